package sesame_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/password"
)

// readCounting counts session reads by secret.
type readCounting struct {
	*memstore.Store
	reads atomic.Int64
}

func (r *readCounting) Session(ctx context.Context, hash [32]byte) (sesame.Session, error) {
	r.reads.Add(1)
	return r.Store.Session(ctx, hash)
}

// With SessionCache, the cookie path reads the store once; an end made
// elsewhere refuses the session as soon as the revocation set knows it; a
// set behind its bound answers nothing; a cached session that looks idle is
// read again, since another node may have used it.
func TestSessionCache(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	mem := memstore.New()
	mem.Now = clk.Now
	st := &readCounting{Store: mem}
	revs := sesame.NewRevocationSet(mem, time.Hour, time.Second, clk.Now)
	if err := revs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a := sesame.New(sesame.Config{Users: mem, Sessions: st, Audit: mem, Limiter: mem,
		Hasher: password.NewHasher(password.Fast), Revocations: revs, SessionCache: 100,
		IdleTimeout: 10 * time.Second, Now: clk.Now})
	if _, err := a.Register(ctx, "c@x.test", "password one", nil); err != nil {
		t.Fatal(err)
	}
	login := func() sesame.Login {
		l, err := a.Login(ctx, sesame.LoginRequest{Email: "c@x.test", Password: "password one"})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := login()
	authn := func(what string, secret string, want error) {
		t.Helper()
		if _, _, err := a.Authenticate(ctx, secret); !errors.Is(err, want) {
			t.Fatalf("%s: Authenticate = %v, want %v", what, err, want)
		}
	}
	before := st.reads.Load()
	for range 10 {
		authn("live", l.Secret, nil)
	}
	if n := st.reads.Load() - before; n != 1 {
		t.Fatalf("10 cookie requests read the store %d times, want 1", n)
	}

	// Ended by another node: the store forgets it, this node's set
	// learns of it from the log.
	if err := mem.DeleteSession(ctx, l.User.ID, l.Session.ID); err != nil {
		t.Fatal(err)
	}
	if err := revs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	authn("ended elsewhere, once the set knows", l.Secret, sesame.ErrSessionNotFound)

	// Behind the bound: 503, not the cached answer.
	l2 := login()
	authn("live", l2.Secret, nil)
	clk.Add(1500 * time.Millisecond)
	authn("set behind its bound", l2.Secret, sesame.ErrUnavailable)
	if err := revs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	authn("caught up", l2.Secret, nil)

	// Used on another node 8 s later, here 11 s later: the cached copy
	// looks idle past the 10 s timeout; the store says otherwise.
	l3 := login()
	authn("live", l3.Secret, nil)
	clk.Add(8 * time.Second)
	if err := mem.TouchSession(ctx, l3.User.ID, l3.Session.ID, clk.Now(), clk.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Add(3 * time.Second)
	if err := revs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	authn("used on another node since it was cached", l3.Secret, nil)
	// And truly idle: refused.
	clk.Add(11 * time.Second)
	if err := revs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	authn("idle", l3.Secret, sesame.ErrSessionNotFound)
}
