package main

// End-to-end test of a key rotation under two servers on one database.

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/token"
)

// TestE2EKeyRotationTwoNodes: two servers on one database (the embedded
// default, one data directory), "sesame keys rotate" while both issue
// tokens: every token either node issues verifies on the other throughout
// (a new key is published everywhere before any node signs with it), and
// both nodes sign with the new key within 10 s (issue 7 item 7).
func TestE2EKeyRotationTwoNodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := e2eStartNode(t, "A", dir, e2eNoEnv, "--issuer", "http://sesame-rot.test")
	b := e2eStartNode(t, "B", dir, e2eNoEnv, "--issuer", "http://sesame-rot.test")
	if a.kid != b.kid {
		t.Fatalf("nodes on one database start with kids %s and %s, want one", a.kid, b.kid)
	}
	oldKid := a.kid
	email := e2eEmail("rotation")
	a.register(t, email, e2ePassword)
	rts := map[*e2eServer]string{a: a.grant(t, email, e2ePassword).refresh, b: b.grant(t, email, e2ePassword).refresh}
	other := map[*e2eServer]*e2eServer{a: b, b: a}

	out := a.mustCLI(t, "", "keys", "rotate")
	rotated := time.Now()
	newKid := ""
	if f := strings.Fields(out); len(f) > 3 {
		newKid = f[3]
	}
	if !strings.Contains(out, "new signing key") || newKid == "" {
		t.Fatalf("sesame keys rotate printed %q", out)
	}
	switched := map[*e2eServer]time.Duration{}
	checked := 0
	// Until both sign with the new key, and a second more.
	for len(switched) < 2 || time.Since(rotated) < switched[a]+time.Second || time.Since(rotated) < switched[b]+time.Second {
		for _, n := range []*e2eServer{a, b} {
			g := n.mustRefresh(t, rts[n], "node "+n.name+": refresh during the rotation")
			rts[n] = g.refresh
			kid, _ := tokParse(t, g.access).header["kid"].(string)
			switch kid {
			case oldKid:
			case newKid:
				if _, ok := switched[n]; !ok {
					switched[n] = time.Since(rotated)
				}
			default:
				t.Fatalf("node %s signs with kid %s, neither the old %s nor the new %s", n.name, kid, oldKid, newKid)
			}
			for _, v := range []*e2eServer{n, other[n]} {
				checked++
				if r := v.userinfo(t, g.access); r.status != http.StatusOK {
					t.Errorf("%v after the rotation: node %s's token (kid %s) on node %s: %d %s, want 200", time.Since(rotated).Round(time.Millisecond), n.name, kid, v.name, r.status, r.body)
				}
			}
		}
		if time.Since(rotated) > 15*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range []*e2eServer{a, b} {
		d, ok := switched[n]
		if !ok || d > 10*time.Second {
			t.Errorf("node %s signs with the new key after %v (switched: %v), want within 10 s", n.name, d, ok)
		}
		t.Logf("node %s signs with the new key %v after the rotation", n.name, d.Round(time.Millisecond))
		if jwks := string(n.do(t, "GET", "/.well-known/jwks.json", nil).want(t, http.StatusOK).body); !strings.Contains(jwks, oldKid) || !strings.Contains(jwks, newKid) {
			t.Errorf("node %s's JWKS after the rotation lacks the old or the new kid: %s", n.name, jwks)
		}
	}
	t.Logf("%d cross-node and same-node checks", checked)
}

// countingKeys counts how often the signing keys are read.
type countingKeys struct {
	sesame.KeyStore
	reads atomic.Int64
}

func (c *countingKeys) SigningKeys(ctx context.Context) ([]sesame.SigningKey, error) {
	c.reads.Add(1)
	return c.KeyStore.SigningKeys(ctx)
}

// TestUnknownKIDReloadsAtMostOnceASecond: tokens with kids the server does
// not know make it read the keys again, but at most once a second however
// many arrive; a key stored meanwhile is found by the next such read.
func TestUnknownKIDReloadsAtMostOnceASecond(t *testing.T) {
	ctx := context.Background()
	st := &countingKeys{KeyStore: memstore.New()}
	master := make([]byte, 32)
	rand.Read(master)
	log := slog.New(slog.DiscardHandler)
	set, err := loadKeySet(ctx, st, master, "EdDSA", time.Hour, true, log)
	if err != nil {
		t.Fatal(err)
	}
	l := &keyLoader{store: st, holder: token.NewKeys(set), master: master, alg: "EdDSA", retain: time.Hour, log: log}
	before := st.reads.Load()
	for i := range 50 {
		if l.unknownKID(ctx, fmt.Sprintf("no-such-kid-%d", i)) {
			t.Fatalf("unknown kid %d reported known", i)
		}
	}
	if n := st.reads.Load() - before; n != 1 {
		t.Errorf("50 unknown kids within a second read the keys %d times, want 1", n)
	}
	k, err := newSigningKey(ctx, st, master, "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	if l.unknownKID(ctx, k.ID) {
		t.Errorf("a kid stored within the second after a reload was found without a read")
	}
	time.Sleep(unknownKIDReloadEvery + 50*time.Millisecond)
	if !l.unknownKID(ctx, k.ID) {
		t.Errorf("a stored kid was not found by the reload a second later")
	}
	if n := st.reads.Load() - before; n != 2 {
		t.Errorf("keys read %d times in all, want 2", n)
	}
}
