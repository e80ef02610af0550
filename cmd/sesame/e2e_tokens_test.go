package main

// End-to-end tests of token-based authentication: the token endpoint, JWT
// access tokens, refresh-token families, revocation, the JWKS and discovery
// documents and key rotation, against docs/API.md. Every server is the
// real one, started through run on 127.0.0.1:0; tokens are decoded and their
// signatures checked here with the standard library alone, independently of
// the server's token package. The servers, requests and accounts are those
// of e2e_helpers_test.go; the token helpers here (grants, revocation, JWTs,
// keys) serve the multi-node tests too. Every identifier here starts with
// tok so that it cannot collide with the other tests of package main.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokWantNoStore fails unless the response forbids caching.
func tokWantNoStore(t testing.TB, r e2eResp, what string) {
	t.Helper()
	if cc := r.header.Get("Cache-Control"); !strings.Contains(strings.ToLower(cc), "no-store") {
		t.Errorf("%s: %s: Cache-Control %q, want no-store", what, r.req, cc)
	}
}

// tokWant401 fails unless r is a 401 that challenges for a bearer token
// with error="invalid_token".
func tokWant401(t testing.TB, r e2eResp, what string) {
	t.Helper()
	if !r.wantFor(t, what, http.StatusUnauthorized) {
		return
	}
	www := strings.Join(r.header.Values("WWW-Authenticate"), ", ")
	if !strings.Contains(www, "Bearer") || !strings.Contains(www, `error="invalid_token"`) {
		t.Errorf("%s: %s: 401 with WWW-Authenticate %q, want Bearer ... error=\"invalid_token\"", what, r.req, www)
	}
}

// tokGrant is a successful token response.
type tokGrant struct {
	access    string
	refresh   string
	expiresIn float64
	resp      e2eResp
}

// tokGrantOf checks a token response against RFC 6749 §5.1 and the
// contract: 200, JSON, no-store, Bearer, and both tokens.
func tokGrantOf(t testing.TB, r e2eResp, what string) tokGrant {
	t.Helper()
	if !r.wantFor(t, what, http.StatusOK) {
		t.FailNow()
	}
	tokWantNoStore(t, r, what)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	m := r.json(t)
	g := tokGrant{resp: r}
	g.access, _ = m["access_token"].(string)
	g.refresh, _ = m["refresh_token"].(string)
	if g.access == "" || g.refresh == "" {
		t.Fatalf("%s: no access_token or refresh_token: %s", what, r.body)
	}
	if tt, _ := m["token_type"].(string); tt != "Bearer" {
		t.Errorf("%s: token_type %v, want \"Bearer\"", what, m["token_type"])
	}
	var ok bool
	if g.expiresIn, ok = m["expires_in"].(float64); !ok || g.expiresIn != float64(int64(g.expiresIn)) {
		t.Errorf("%s: expires_in %v (%T), want a whole number of seconds", what, m["expires_in"], m["expires_in"])
	}
	// At least 256 bits: 43 characters of base64url, or 64 of hex.
	if len(g.refresh) < 43 || strings.Count(g.refresh, ".") > 0 {
		t.Errorf("%s: refresh_token %q is not an opaque string of at least 256 bits", what, g.refresh)
	}
	if g.refresh == g.access {
		t.Errorf("%s: refresh_token equals access_token", what)
	}
	return g
}

// grant runs the password grant (form body) and checks the answer.
func (s *e2eServer) grant(t testing.TB, email, password string) tokGrant {
	t.Helper()
	r := s.form(t, "/v1/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}}.Encode())
	return tokGrantOf(t, r, "password grant for "+email)
}

// refresh runs the refresh_token grant (form body).
func (s *e2eServer) refresh(t testing.TB, rt string) e2eResp {
	t.Helper()
	return s.form(t, "/v1/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode())
}

func (s *e2eServer) mustRefresh(t testing.TB, rt, what string) tokGrant {
	t.Helper()
	return tokGrantOf(t, s.refresh(t, rt), what)
}

// revoke revokes the token (form body) and fails unless the answer is 200.
func (s *e2eServer) revoke(t testing.TB, token, what string) {
	t.Helper()
	s.form(t, "/v1/token/revoke", url.Values{"token": {token}}.Encode()).wantFor(t, what, http.StatusOK)
}

func (s *e2eServer) userinfo(t testing.TB, at string) e2eResp {
	t.Helper()
	return s.do(t, "GET", "/v1/userinfo", nil, e2eBearer(at))
}

// wantAccessAlive fails unless the access token gets 200 from /v1/userinfo.
func (s *e2eServer) wantAccessAlive(t testing.TB, at, what string) {
	t.Helper()
	s.userinfo(t, at).wantFor(t, what+": access token must work", http.StatusOK)
}

// wantAccessDead fails unless the access token gets 401 from /v1/userinfo.
func (s *e2eServer) wantAccessDead(t testing.TB, at, what string) {
	t.Helper()
	tokWant401(t, s.userinfo(t, at), what+": access token must be refused")
}

// wantAccessGone checks that an access token whose session another node
// (or the CLI) ended is refused on s within the revocation feed's bound:
// API.md's "at once on the node that ended it, within a second on every
// other node". Until then it may still get 200; a 503 (this node is behind
// on revocations: never a guess) is tolerated and logged; after the bound,
// 200 fails.
func (s *e2eServer) wantAccessGone(t testing.TB, at, what string) {
	t.Helper()
	start := time.Now()
	for try := 1; ; try++ {
		r := s.userinfo(t, at)
		switch {
		case r.status == http.StatusUnauthorized:
			tokWant401(t, r, what)
			if try > 1 {
				t.Logf("%s%s: refused after %v (%d requests)", s.label(), what, time.Since(start).Round(time.Microsecond), try)
			}
			return
		case r.status == http.StatusServiceUnavailable:
			t.Logf("%s%s: 503 after %v: this node is behind on revocations", s.label(), what, time.Since(start).Round(time.Millisecond))
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s%s: still 503 after 10s", s.label(), what)
			}
		case r.status != http.StatusOK:
			t.Fatalf("%s%s: GET /v1/userinfo = %d, want 401 (or 200 within %v); body %s", s.label(), what, r.status, revocationLag, r.body)
		case time.Since(start) > revocationLag:
			t.Fatalf("%s%s: still 200 %v after the session ended elsewhere", s.label(), what, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}
}

// wantRefreshDead fails unless the refresh token gets 400 invalid_grant.
func (s *e2eServer) wantRefreshDead(t testing.TB, rt, what string) {
	t.Helper()
	r := s.refresh(t, rt)
	r.wantFor(t, what+": refresh token must be refused", http.StatusBadRequest, "invalid_grant")
	tokWantNoStore(t, r, what)
}

// audit returns the user's audit events, newest first.
func (s *e2eServer) audit(t testing.TB, adminAT, userID string) []map[string]any {
	t.Helper()
	r := s.do(t, "GET", "/v1/admin/audit?user_id="+url.QueryEscape(userID), nil, e2eBearer(adminAT))
	if !r.wantFor(t, "audit", http.StatusOK) {
		t.FailNow()
	}
	var body struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("audit: %v: %s", err, r.body)
	}
	for _, e := range body.Events {
		for _, k := range []string{"time", "type", "user_id", "ip", "user_agent", "session_id"} {
			if _, ok := e[k]; !ok {
				t.Errorf("audit event %v lacks %q", e, k)
			}
		}
	}
	return body.Events
}

// tokEvents returns the events of the type.
func tokEvents(events []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range events {
		if e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

// tokWantEvent fails unless events has one of the type for the session.
func tokWantEvent(t testing.TB, events []map[string]any, typ, sid string) {
	t.Helper()
	for _, e := range tokEvents(events, typ) {
		if e["session_id"] == sid {
			return
		}
	}
	var types []string
	for _, e := range events {
		types = append(types, fmt.Sprintf("%v(%v)", e["type"], e["session_id"]))
	}
	t.Errorf("audit log has no %s event for session %s; events: %v", typ, sid, types)
}

// --- JWT, decoded and checked independently of the server's code ---

func tokB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func tokUnb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("segment %q is not base64url: %v", s, err)
	}
	return b
}

// tokJWT is a compact JWS, split and decoded.
type tokJWT struct {
	raw    string
	seg    [3]string
	header map[string]any
	claims map[string]any // numbers as json.Number
}

func tokDecodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%q is not a JSON object: %v", b, err)
	}
	return m
}

func tokParse(t testing.TB, raw string) tokJWT {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q has %d segments, want 3 (JWS compact)", raw, len(parts))
	}
	j := tokJWT{raw: raw, seg: [3]string(parts)}
	j.header = tokDecodeJSON(t, tokUnb64(t, parts[0]))
	j.claims = tokDecodeJSON(t, tokUnb64(t, parts[1]))
	tokUnb64(t, parts[2])
	return j
}

func (j tokJWT) str(k string) string { s, _ := j.claims[k].(string); return s }

// num returns a NumericDate claim; 0 if absent or not an integer.
func (j tokJWT) num(k string) int64 {
	n, _ := j.claims[k].(json.Number)
	v, err := n.Int64()
	if err != nil {
		return 0
	}
	return v
}

func tokMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tokForge builds header.payload and signs it with sign (empty signature
// if sign is nil).
func tokForge(t testing.TB, header, claims any, sign func([]byte) []byte) string {
	t.Helper()
	hp := tokB64(tokMarshal(t, header)) + "." + tokB64(tokMarshal(t, claims))
	if sign == nil {
		return hp + "."
	}
	return hp + "." + tokB64(sign([]byte(hp)))
}

func tokHMAC(h func() hash.Hash, key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(h, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

func tokEd25519(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(priv, in) }
}

func tokES256(priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func tokClone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// jwks fetches /.well-known/jwks.json: the raw document and its keys.
func (s *e2eServer) jwks(t testing.TB) ([]byte, []map[string]any) {
	t.Helper()
	r := s.do(t, "GET", "/.well-known/jwks.json", nil)
	if !r.wantFor(t, "JWKS", http.StatusOK) {
		t.FailNow()
	}
	if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "json") {
		t.Errorf("JWKS: Content-Type %q, want a JSON type", ct)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatalf("JWKS is not a JWK Set: %v: %s", err, r.body)
	}
	return r.body, set.Keys
}

// jwk returns the JWKS key with the kid, failing if there is none.
func (s *e2eServer) jwk(t testing.TB, kid string) map[string]any {
	t.Helper()
	_, keys := s.jwks(t)
	for _, k := range keys {
		if k["kid"] == kid {
			return k
		}
	}
	t.Fatalf("kid %q is not in the JWKS %v", kid, keys)
	return nil
}

func tokMember(t testing.TB, jwk map[string]any, name string) []byte {
	t.Helper()
	s, _ := jwk[name].(string)
	if s == "" {
		t.Fatalf("JWK %v lacks %q", jwk, name)
	}
	return tokUnb64(t, s)
}

// tokPublicKey builds the public key a JWK describes.
func tokPublicKey(t testing.TB, jwk map[string]any) crypto.PublicKey {
	t.Helper()
	switch jwk["kty"] {
	case "OKP":
		x := tokMember(t, jwk, "x")
		if jwk["crv"] != "Ed25519" || len(x) != ed25519.PublicKeySize {
			t.Fatalf("OKP JWK %v is not an Ed25519 key", jwk)
		}
		return ed25519.PublicKey(x)
	case "EC":
		x, y := tokMember(t, jwk, "x"), tokMember(t, jwk, "y")
		if jwk["crv"] != "P-256" || len(x) != 32 || len(y) != 32 {
			t.Fatalf("EC JWK %v is not a P-256 key with 32-byte coordinates", jwk)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("EC JWK %v: %v", jwk, err)
		}
		return pub
	case "RSA":
		n, e := tokMember(t, jwk, "n"), tokMember(t, jwk, "e")
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	t.Fatalf("JWK %v has an unexpected kty", jwk)
	return nil
}

// tokVerify checks the token's signature with the JWK, using only the
// standard library.
func tokVerify(t testing.TB, jwk map[string]any, j tokJWT) error {
	t.Helper()
	in := []byte(j.seg[0] + "." + j.seg[1])
	sig := tokUnb64(t, j.seg[2])
	switch pub := tokPublicKey(t, jwk).(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, in, sig) {
			return fmt.Errorf("Ed25519 signature does not verify")
		}
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return fmt.Errorf("ES256 signature of %d bytes, want 64 (R || S)", len(sig))
		}
		h := sha256.Sum256(in)
		if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return fmt.Errorf("ES256 signature does not verify")
		}
	case *rsa.PublicKey:
		h := sha256.Sum256(in)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			return fmt.Errorf("RS256 signature does not verify: %v", err)
		}
	}
	return nil
}

// tokHMACSecrets returns the ways an attacker might turn the public key into
// an HMAC secret, hoping the server verifies HS256 with "its key".
func tokHMACSecrets(t testing.TB, jwk map[string]any, jwksDoc []byte) map[string][]byte {
	t.Helper()
	pub := tokPublicKey(t, jwk)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{
		"JWK JSON":       tokMarshal(t, jwk),
		"JWKS document":  jwksDoc,
		"PKIX DER":       der,
		"PKIX PEM":       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"kid":            []byte(fmt.Sprint(jwk["kid"])),
		"empty":          {},
		"PEM without NL": bytes.TrimSpace(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		out["raw x"] = []byte(p)
		out["base64url x"] = []byte(jwk["x"].(string))
		out["std base64 x"] = []byte(base64.StdEncoding.EncodeToString(p))
	case *ecdsa.PublicKey:
		pt, _ := p.Bytes()
		out["uncompressed point"] = pt
		out["base64url x"] = []byte(jwk["x"].(string))
	case *rsa.PublicKey:
		out["PKCS1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(p)})
		out["modulus"] = p.N.Bytes()
		out["base64url n"] = []byte(jwk["n"].(string))
	}
	return out
}

// --- tests ---

// TestTokenPasswordGrant covers POST /v1/token with the password grant:
// form and JSON bodies, the errors of RFC 6749 §5.2, and throttling.
func TestTokenPasswordGrant(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	email := e2eEmail("grant")
	s.register(t, email, e2ePassword)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}

	t.Run("form", func(t *testing.T) {
		g := s.grant(t, email, e2ePassword)
		if g.expiresIn < 590 || g.expiresIn > 600 {
			t.Errorf("expires_in = %v, want about 600 (the default --access-token-ttl 10m)", g.expiresIn)
		}
		// The username is an email: trimmed, NFKC-normalised and compared
		// case-insensitively, as everywhere.
		r := s.do(t, "POST", "/v1/token", form("grant_type", "password", "username", "  "+strings.ToUpper(email)+" ", "password", e2ePassword), e2eHeader("Content-Type", e2eFormCT+"; charset=UTF-8"))
		g2 := tokGrantOf(t, r, "form with charset parameter and an upper-case username")
		if got := tokParse(t, g2.access).str("email"); got != email {
			t.Errorf("email claim %q for username %q, want the account's %q", got, strings.ToUpper(email), email)
		}
	})

	t.Run("json", func(t *testing.T) {
		r := s.do(t, "POST", "/v1/token", map[string]string{"grant_type": "password", "username": email, "password": e2ePassword})
		g := tokGrantOf(t, r, "JSON password grant")
		if g.expiresIn < 590 || g.expiresIn > 600 {
			t.Errorf("expires_in = %v, want about 600", g.expiresIn)
		}
		s.wantAccessAlive(t, g.access, "JSON grant")
	})

	t.Run("wrong credentials", func(t *testing.T) {
		for name, body := range map[string]string{
			"wrong password": form("grant_type", "password", "username", email, "password", "not the password at all"),
			"unknown user":   form("grant_type", "password", "username", e2eEmail("nobody"), "password", e2ePassword),
		} {
			r := s.form(t, "/v1/token", body)
			r.wantFor(t, name, http.StatusBadRequest, "invalid_grant")
			tokWantNoStore(t, r, name)
		}
		r := s.do(t, "POST", "/v1/token", map[string]string{"grant_type": "password", "username": email, "password": "not the password either"})
		r.wantFor(t, "JSON wrong password", http.StatusBadRequest, "invalid_grant")
		// Reset the account's throttle for the subtests below.
		s.grant(t, email, e2ePassword)
	})

	t.Run("unsupported grant types", func(t *testing.T) {
		for _, gt := range []string{"authorization_code", "client_credentials", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "password2"} {
			r := s.form(t, "/v1/token", form("grant_type", gt, "username", email, "password", e2ePassword, "code", "x", "refresh_token", "y"))
			r.wantFor(t, "form grant_type="+gt, http.StatusBadRequest, "unsupported_grant_type")
			tokWantNoStore(t, r, "grant_type="+gt)
			r = s.do(t, "POST", "/v1/token", map[string]string{"grant_type": gt})
			r.wantFor(t, "JSON grant_type="+gt, http.StatusBadRequest, "unsupported_grant_type")
		}
	})

	t.Run("malformed requests", func(t *testing.T) {
		good := form("grant_type", "password", "username", email, "password", e2ePassword)
		cases := []struct {
			name, path, ctype, body string
		}{
			{"empty form", "/v1/token", e2eFormCT, ""},
			{"no grant_type", "/v1/token", e2eFormCT, form("username", email, "password", e2ePassword)},
			{"empty grant_type", "/v1/token", e2eFormCT, form("grant_type", "", "username", email, "password", e2ePassword)},
			{"no username", "/v1/token", e2eFormCT, form("grant_type", "password", "password", e2ePassword)},
			{"no password", "/v1/token", e2eFormCT, form("grant_type", "password", "username", email)},
			{"empty password", "/v1/token", e2eFormCT, form("grant_type", "password", "username", email, "password", "")},
			{"no refresh_token", "/v1/token", e2eFormCT, form("grant_type", "refresh_token")},
			{"repeated grant_type", "/v1/token", e2eFormCT, good + "&grant_type=password"},
			{"repeated username", "/v1/token", e2eFormCT, good + "&username=" + url.QueryEscape(email)},
			{"repeated password", "/v1/token", e2eFormCT, good + "&password=" + url.QueryEscape(e2ePassword)},
			{"repeated refresh_token", "/v1/token", e2eFormCT, "grant_type=refresh_token&refresh_token=a&refresh_token=b"},
			{"bad percent escape", "/v1/token", e2eFormCT, "grant_type=password&username=%zz&password=x"},
			{"semicolon separator", "/v1/token", e2eFormCT, "grant_type=password;username=" + url.QueryEscape(email) + ";password=x"},
			{"parameters in the query string", "/v1/token?" + good, e2eFormCT, ""},
			{"text/plain body", "/v1/token", "text/plain", good},
			{"no content type", "/v1/token", "", good},
			{"form type with a suffix", "/v1/token", e2eFormCT + "foo", good},
			{"malformed form type", "/v1/token", e2eFormCT + "; charset", good},
			{"malformed JSON", "/v1/token", e2eJSONCT, `{"grant_type":"password",`},
			{"JSON array", "/v1/token", e2eJSONCT, `[{"grant_type":"password"}]`},
			{"JSON wrong type", "/v1/token", e2eJSONCT, `{"grant_type":"password","username":1,"password":2}`},
			{"JSON repeated key", "/v1/token", e2eJSONCT, `{"grant_type":"password","username":"` + email + `","password":"x","password":"` + e2ePassword + `"}`},
			{"JSON trailing data", "/v1/token", e2eJSONCT, `{"grant_type":"password","username":"` + email + `","password":"` + e2ePassword + `"} {}`},
			{"JSON no grant_type", "/v1/token", e2eJSONCT, `{"username":"` + email + `","password":"` + e2ePassword + `"}`},
			{"JSON null grant_type", "/v1/token", e2eJSONCT, `{"grant_type":null,"username":"` + email + `","password":"` + e2ePassword + `"}`},
			{"empty JSON body", "/v1/token", e2eJSONCT, ``},
		}
		for _, c := range cases {
			r := s.do(t, "POST", c.path, c.body, e2eHeader("Content-Type", c.ctype)) // no content type if c.ctype is empty
			r.wantFor(t, c.name, http.StatusBadRequest, "invalid_request")
			tokWantNoStore(t, r, c.name)
		}
	})

	t.Run("throttle", func(t *testing.T) {
		victim := e2eEmail("throttled")
		s.register(t, victim, e2ePassword)
		var limited e2eResp
		n := 0
		for n < 10 {
			n++
			r := s.form(t, "/v1/token", form("grant_type", "password", "username", victim, "password", fmt.Sprintf("guess number %d", n)))
			if r.status == http.StatusTooManyRequests {
				limited = r
				break
			}
			r.wantFor(t, fmt.Sprintf("wrong password #%d", n), http.StatusBadRequest, "invalid_grant")
		}
		if limited.status != http.StatusTooManyRequests {
			t.Fatalf("10 wrong passwords in a row on /v1/token were never throttled (429)")
		}
		if n != 6 {
			t.Errorf("first 429 at wrong password #%d, want #6: exactly after --login-account-limit 5", n)
		}
		tokWantNoStore(t, limited, "429")
		if ra, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("429 has Retry-After %q, want a positive whole number of seconds", limited.header.Get("Retry-After"))
		}
		// Throttled means throttled: the right password is refused too, on
		// this endpoint and on the cookie login of the same account.
		r := s.form(t, "/v1/token", form("grant_type", "password", "username", victim, "password", e2ePassword))
		r.wantFor(t, "right password while throttled", http.StatusTooManyRequests)
		r = s.do(t, "POST", "/v1/session", map[string]string{"email": victim, "password": e2ePassword})
		r.wantFor(t, "cookie login of an account throttled through /v1/token", http.StatusTooManyRequests)
		// Another account is not affected.
		s.grant(t, email, e2ePassword)
	})
}

// TestTokenShape decodes access tokens of EdDSA, ES256 and RS256 servers,
// checks header and claims, verifies the signature with the JWKS key
// independently, checks the discovery document, and tries alg confusion
// against each.
func TestTokenShape(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			var s *e2eServer
			if alg == "EdDSA" {
				s = e2eStart(t) // the default
			} else {
				s = e2eStart(t, "--signing-alg", alg)
			}
			if want := "http://" + s.host; s.issuer != want {
				t.Errorf("issuer logged as %q, want %q (the default)", s.issuer, want)
			}
			email := e2eEmail("shape-" + strings.ToLower(alg))
			uid := s.register(t, email, e2ePassword)
			before := time.Now()
			g := s.grant(t, email, e2ePassword)
			j := tokParse(t, g.access)

			// Header.
			if j.header["alg"] != alg {
				t.Errorf("header alg = %v, want %s", j.header["alg"], alg)
			}
			if j.header["typ"] != "at+jwt" {
				t.Errorf("header typ = %v, want \"at+jwt\"", j.header["typ"])
			}
			kid, _ := j.header["kid"].(string)
			if kid == "" || kid != s.kid {
				t.Errorf("header kid = %v, want the logged kid %q", j.header["kid"], s.kid)
			}

			// JWKS: every key has kid, kty, alg and no private member.
			doc, keys := s.jwks(t)
			wantKty := map[string]string{"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA"}[alg]
			var key map[string]any
			for _, k := range keys {
				for _, m := range []string{"kid", "kty", "alg"} {
					if v, _ := k[m].(string); v == "" {
						t.Errorf("JWKS key %v lacks %q", k, m)
					}
				}
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
					if _, ok := k[private]; ok {
						t.Errorf("JWKS key %v carries the private member %q", k["kid"], private)
					}
				}
				if k["kid"] == kid {
					key = k
				}
			}
			if key == nil {
				t.Fatalf("kid %q is not in the JWKS: %s", kid, doc)
			}
			if key["alg"] != alg || key["kty"] != wantKty {
				t.Errorf("JWKS key alg/kty = %v/%v, want %s/%s", key["alg"], key["kty"], alg, wantKty)
			}
			if u, ok := key["use"]; ok && u != "sig" {
				t.Errorf("JWKS key use = %v, want sig", u)
			}
			if err := tokVerify(t, key, j); err != nil {
				t.Errorf("access token does not verify with its JWKS key: %v", err)
			}
			// A flipped byte of the signed part must not verify: the check
			// above is real.
			bad := j
			bad.seg[1] = tokB64(append(tokUnb64(t, j.seg[1]), ' '))
			if tokVerify(t, key, bad) == nil {
				t.Errorf("independent verification accepted a modified payload")
			}

			// Claims.
			if j.str("iss") != s.issuer {
				t.Errorf("iss = %q, want %q", j.str("iss"), s.issuer)
			}
			if j.str("sub") != uid {
				t.Errorf("sub = %q, want the user id %q", j.str("sub"), uid)
			}
			switch aud := j.claims["aud"].(type) {
			case string:
				if aud != s.issuer {
					t.Errorf("aud = %q, want the issuer %q", aud, s.issuer)
				}
			case []any:
				if !slices.Contains(aud, any(s.issuer)) {
					t.Errorf("aud = %v, want it to contain the issuer %q", aud, s.issuer)
				}
			default:
				t.Errorf("aud = %v (%T), want a string or an array", j.claims["aud"], j.claims["aud"])
			}
			iat, nbf, exp := j.num("iat"), j.num("nbf"), j.num("exp")
			if iat == 0 || nbf == 0 || exp == 0 {
				t.Errorf("iat/nbf/exp = %v/%v/%v, want integer NumericDates", j.claims["iat"], j.claims["nbf"], j.claims["exp"])
			}
			if now := time.Now().Unix(); iat < before.Unix()-5 || iat > now+5 {
				t.Errorf("iat = %d, want about now (%d)", iat, now)
			}
			if nbf > iat {
				t.Errorf("nbf = %d is after iat = %d", nbf, iat)
			}
			if d := exp - iat; d < 590 || d > 600 {
				t.Errorf("exp - iat = %ds, want 600", d)
			}
			if d := float64(exp - time.Now().Unix()); d-g.expiresIn > 5 || g.expiresIn-d > 5 {
				t.Errorf("expires_in = %v disagrees with exp (%v s from now)", g.expiresIn, d)
			}
			if j.str("jti") == "" || j.str("sid") == "" {
				t.Errorf("jti = %q, sid = %q, want both", j.str("jti"), j.str("sid"))
			}
			if j.str("email") != email {
				t.Errorf("email = %q, want %q", j.str("email"), email)
			}
			roles, ok := j.claims["roles"].([]any)
			if !ok || !slices.Contains(roles, any("user")) || slices.Contains(roles, any("admin")) {
				t.Errorf("roles = %v, want an array with \"user\" and not \"admin\"", j.claims["roles"])
			}
			// A second token of the same family has its own jti.
			g2 := s.mustRefresh(t, g.refresh, "refresh")
			j2 := tokParse(t, g2.access)
			if j2.str("jti") == j.str("jti") {
				t.Errorf("two access tokens share the jti %q", j.str("jti"))
			}
			if j2.str("sid") != j.str("sid") {
				t.Errorf("refreshed token's sid %q, want the family's %q", j2.str("sid"), j.str("sid"))
			}
			if err := tokVerify(t, key, j2); err != nil {
				t.Errorf("refreshed access token does not verify: %v", err)
			}

			// Discovery.
			r := s.do(t, "GET", "/.well-known/openid-configuration", nil)
			if r.wantFor(t, "discovery", http.StatusOK) {
				d := r.json(t)
				if d["issuer"] != s.issuer {
					t.Errorf("discovery issuer = %v, want %q", d["issuer"], s.issuer)
				}
				for k, path := range map[string]string{
					"token_endpoint":      "/v1/token",
					"userinfo_endpoint":   "/v1/userinfo",
					"revocation_endpoint": "/v1/token/revoke",
				} {
					if d[k] != s.issuer+path {
						t.Errorf("discovery %s = %v, want %s", k, d[k], s.issuer+path)
					}
				}
				algs, _ := d["id_token_signing_alg_values_supported"].([]any)
				if !slices.Contains(algs, any(alg)) {
					t.Errorf("id_token_signing_alg_values_supported = %v, want it to contain %s", d["id_token_signing_alg_values_supported"], alg)
				}
				ju, _ := d["jwks_uri"].(string)
				if !strings.HasPrefix(ju, s.issuer+"/") {
					t.Errorf("jwks_uri = %q, want a URL under the issuer", ju)
				} else {
					rr := s.do(t, "GET", strings.TrimPrefix(ju, s.base), nil)
					if rr.wantFor(t, "jwks_uri", http.StatusOK) && !bytes.Equal(rr.body, doc) {
						t.Errorf("jwks_uri serves %s, want the JWKS %s", rr.body, doc)
					}
				}
			}

			// The token works, and nothing made from the public key does.
			s.wantAccessAlive(t, g.access, alg+" token")
			attacks := map[string]string{}
			for name, secret := range tokHMACSecrets(t, key, doc) {
				for hname, h := range map[string]func() hash.Hash{"HS256": sha256.New, "HS384": sha512.New384, "HS512": sha512.New} {
					hdr := map[string]any{"alg": hname, "typ": "at+jwt", "kid": kid}
					attacks[hname+" keyed with "+name] = tokForge(t, hdr, j.claims, tokHMAC(h, secret))
				}
			}
			for _, none := range []string{"none", "None", "NONE", "nOnE"} {
				hdr := map[string]any{"alg": none, "typ": "at+jwt", "kid": kid}
				attacks["alg "+none+" unsigned"] = tokForge(t, hdr, j.claims, nil)
				attacks["alg "+none+" with the real signature"] = tokForge(t, hdr, j.claims, nil) + j.seg[2]
			}
			// Signed with another algorithm's key under the server's kid.
			_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
			ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			attacks["EdDSA by an attacker's key"] = tokForge(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}, j.claims, tokEd25519(edPriv))
			attacks["ES256 by an attacker's key"] = tokForge(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid}, j.claims, tokES256(ecPriv))
			for name, tok := range attacks {
				tokWant401(t, s.userinfo(t, tok), alg+" server, "+name)
			}
		})
	}
}

// TestTokenUserinfo covers GET /v1/userinfo by bearer token and by cookie,
// and where an access token may (not) come from.
func TestTokenUserinfo(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	email := e2eEmail("userinfo")
	uid := s.register(t, email, e2ePassword)
	g := s.grant(t, email, e2ePassword)
	cookie := s.login(t, email, e2ePassword).cookie

	check := func(r e2eResp, auth string) {
		t.Helper()
		if !r.wantFor(t, "userinfo by "+auth, http.StatusOK) {
			return
		}
		m := r.json(t)
		roles, _ := m["roles"].([]any)
		if m["sub"] != uid || m["email"] != email || m["auth"] != auth || !slices.Contains(roles, any("user")) {
			t.Errorf("userinfo by %s = %s, want sub %s, email %s, roles [user], auth %q", auth, r.body, uid, email, auth)
		}
	}
	check(s.userinfo(t, g.access), "token")
	check(s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(cookie)), "session")

	tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil), "no credentials")
	tokWant401(t, s.do(t, "GET", "/v1/userinfo?access_token="+url.QueryEscape(g.access), nil), "access_token query parameter")
	tokWant401(t, s.userinfo(t, g.refresh), "refresh token as bearer")
	tokWant401(t, s.userinfo(t, "not-a-token"), "garbage bearer")
	tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil, e2eHeader("Authorization", "Bearer ")), "empty bearer")
	tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil, e2eHeader("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(email+":"+e2ePassword)))), "basic credentials")
	tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(e2eRandomSecret())), "unknown cookie")
	// The refresh token is not a session cookie either.
	tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(g.refresh)), "refresh token as cookie")
	// The token still works after all that.
	check(s.userinfo(t, g.access), "token")
}

// TestTokenForgery presents forged, tampered, foreign and malformed access
// tokens: every one is 401, and none reaches the admin API.
func TestTokenForgery(t *testing.T) {
	t.Parallel()
	a := e2eStart(t)
	b := e2eStart(t) // another Sesame, another key
	// Nodes on a's database, hence a's keys: only iss, or only aud, differ.
	cIss := e2eStartNode(t, "", a.dataDir, e2eNoEnv, "--issuer", "https://evil.example", "--audience", a.issuer)
	dAud := e2eStartNode(t, "", a.dataDir, e2eNoEnv, "--issuer", a.issuer, "--audience", "https://other-api.example")
	same := e2eStartNode(t, "", a.dataDir, e2eNoEnv, "--issuer", a.issuer) // control: same iss, aud and keys

	email := e2eEmail("forgery")
	a.register(t, email, e2ePassword)
	g := a.grant(t, email, e2ePassword)
	j := tokParse(t, g.access)
	kid := a.kid
	doc, _ := a.jwks(t)
	key := a.jwk(t, kid)
	a.wantAccessAlive(t, g.access, "genuine token")
	a.do(t, "GET", "/v1/admin/users", nil, e2eBearer(g.access)).wantFor(t, "genuine non-admin token on the admin API", http.StatusForbidden, "forbidden")

	bEmail := e2eEmail("other-server")
	b.register(t, bEmail, e2ePassword)
	foreign := b.grant(t, bEmail, e2ePassword).access
	if tokParse(t, foreign).header["kid"] == kid {
		t.Fatalf("two servers with different data directories share kid %q", kid)
	}
	wrongIss := cIss.grant(t, email, e2ePassword).access
	wrongAud := dAud.grant(t, email, e2ePassword).access
	control := same.grant(t, email, e2ePassword).access
	if h := tokParse(t, wrongIss).header["kid"]; h != kid {
		t.Errorf("node on the same database signs with kid %v, want %q", h, kid)
	}
	a.wantAccessAlive(t, control, "token of another node with the same issuer, audience and keys (control)")
	b.wantAccessAlive(t, foreign, "b's own token (control)")
	cIss.wantAccessAlive(t, wrongIss, "the iss-node's own token (control)")

	// An attacker's server for jku and x5u: it must never be asked.
	var hits atomic.Int64
	_, atkPriv, _ := ed25519.GenerateKey(rand.Reader)
	atkPub := atkPriv.Public().(ed25519.PublicKey)
	atkJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": tokB64(atkPub), "kid": "attacker", "alg": "EdDSA", "use": "sig"}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{atkJWK}})
	}))
	defer evil.Close()

	admin := tokClone(j.claims)
	admin["roles"] = []string{"user", "admin"}
	otherSub := tokClone(j.claims)
	otherSub["sub"] = hex.EncodeToString([]byte("someone-else-16b"))
	longer := tokClone(j.claims)
	longer["exp"] = j.num("exp") + 86400
	hdr := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	atk := tokEd25519(atkPriv)
	reHeader := func(h map[string]any) string { // a new header over the real payload and signature
		return tokB64(tokMarshal(t, h)) + "." + j.seg[1] + "." + j.seg[2]
	}
	rePayload := func(c map[string]any) string {
		return j.seg[0] + "." + tokB64(tokMarshal(t, c)) + "." + j.seg[2]
	}
	flip := func(seg string, i int) string {
		raw := tokUnb64(t, seg)
		raw[i] ^= 0x01
		return tokB64(raw)
	}
	sig := tokUnb64(t, j.seg[2])
	g2 := a.mustRefresh(t, g.refresh, "second token of the family")
	j2 := tokParse(t, g2.access)

	attacks := map[string]string{
		// alg none, in several spellings, with and without a signature.
		"alg none, no signature":           tokForge(t, hdr("alg", "none", "typ", "at+jwt", "kid", kid), j.claims, nil),
		"alg none, admin, no signature":    tokForge(t, hdr("alg", "none", "typ", "at+jwt", "kid", kid), admin, nil),
		"alg None, no signature":           tokForge(t, hdr("alg", "None", "typ", "at+jwt"), j.claims, nil),
		"alg NONE, no signature":           tokForge(t, hdr("alg", "NONE", "typ", "at+jwt", "kid", kid), j.claims, nil),
		"alg nOnE, no signature":           tokForge(t, hdr("alg", "nOnE", "typ", "at+jwt", "kid", kid), j.claims, nil),
		"alg none, real signature":         reHeader(hdr("alg", "none", "typ", "at+jwt", "kid", kid)),
		"alg none, no typ, no kid":         tokForge(t, hdr("alg", "none"), j.claims, nil),
		"alg none, two segments":           strings.TrimSuffix(tokForge(t, hdr("alg", "none", "typ", "at+jwt", "kid", kid), j.claims, nil), "."),
		"alg empty":                        tokForge(t, hdr("alg", "", "typ", "at+jwt", "kid", kid), j.claims, nil),
		"alg none, attacker's signature":   tokForge(t, hdr("alg", "none", "typ", "at+jwt", "kid", kid), j.claims, atk),
		"alg EdDSA, attacker key, our kid": tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", kid), j.claims, atk),
		"alg EdDSA, attacker key, admin":   tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", kid), admin, atk),
		// Keys named by the token itself.
		"jwk header with the attacker's key":          tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "jwk", atkJWK), j.claims, atk),
		"jwk header with the attacker's key, our kid": tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", kid, "jwk", atkJWK), j.claims, atk),
		"jku to the attacker's JWKS":                  tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", "attacker", "jku", evil.URL+"/jwks.json"), j.claims, atk),
		"jku to the attacker's JWKS, our kid":         tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", kid, "jku", evil.URL+"/jwks.json"), j.claims, atk),
		"x5u to the attacker":                         tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", "attacker", "x5u", evil.URL+"/cert.pem"), j.claims, atk),
		"x5u to the attacker, our kid":                tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", kid, "x5u", evil.URL+"/cert.pem"), j.claims, atk),
		"jku on the genuine token":                    reHeader(hdr("alg", "EdDSA", "typ", "at+jwt", "kid", kid, "jku", evil.URL+"/jwks.json")),
		// kid.
		"unknown kid, attacker key":  tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", "attacker"), j.claims, atk),
		"unknown kid, real sig":      reHeader(hdr("alg", "EdDSA", "typ", "at+jwt", "kid", "unknown-kid")),
		"no kid, attacker key":       tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt"), j.claims, atk),
		"empty kid, attacker key":    tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", ""), j.claims, atk),
		"path kid, attacker key":     tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", "../../../../dev/null"), j.claims, atk),
		"SQL kid, attacker key":      tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", "' OR '1'='1"), j.claims, atk),
		"numeric kid, attacker key":  tokForge(t, hdr("alg", "EdDSA", "typ", "at+jwt", "kid", 0), j.claims, atk),
		"other server's kid, ours":   reHeader(hdr("alg", "EdDSA", "typ", "at+jwt", "kid", tokParse(t, foreign).header["kid"])),
		"HS256 with kid of raw x":    tokForge(t, hdr("alg", "HS256", "typ", "at+jwt", "kid", kid), j.claims, tokHMAC(sha256.New, tokMember(t, key, "x"))),
		"HS256 admin with raw x":     tokForge(t, hdr("alg", "HS256", "typ", "at+jwt", "kid", kid), admin, tokHMAC(sha256.New, tokMember(t, key, "x"))),
		"HS256 admin with JWK JSON":  tokForge(t, hdr("alg", "HS256", "typ", "at+jwt", "kid", kid), admin, tokHMAC(sha256.New, tokMarshal(t, key))),
		"HS256 admin with base64 x":  tokForge(t, hdr("alg", "HS256", "typ", "at+jwt", "kid", kid), admin, tokHMAC(sha256.New, []byte(key["x"].(string)))),
		"HS256 admin with JWKS doc":  tokForge(t, hdr("alg", "HS256", "typ", "at+jwt", "kid", kid), admin, tokHMAC(sha256.New, doc)),
		"HS256 admin, no kid, raw x": tokForge(t, hdr("alg", "HS256", "typ", "at+jwt"), admin, tokHMAC(sha256.New, tokMember(t, key, "x"))),
		"HS256 admin, JWT typ":       tokForge(t, hdr("alg", "HS256", "typ", "JWT", "kid", kid), admin, tokHMAC(sha256.New, tokMember(t, key, "x"))),
		// Tampering with the genuine token.
		"payload: roles admin":                   rePayload(admin),
		"payload: another sub":                   rePayload(otherSub),
		"payload: later exp":                     rePayload(longer),
		"payload: same claims re-encoded":        j.seg[0] + "." + tokB64(append(tokUnb64(t, j.seg[1]), ' ')) + "." + j.seg[2],
		"header: typ JWT":                        reHeader(hdr("alg", "EdDSA", "typ", "JWT", "kid", kid)),
		"header and payload of another token":    j2.seg[0] + "." + j2.seg[1] + "." + j.seg[2],
		"signature: one bit flipped (first)":     j.seg[0] + "." + j.seg[1] + "." + flip(j.seg[2], 0),
		"signature: one bit flipped (middle)":    j.seg[0] + "." + j.seg[1] + "." + flip(j.seg[2], len(sig)/2),
		"signature: one bit flipped (last)":      j.seg[0] + "." + j.seg[1] + "." + flip(j.seg[2], len(sig)-1),
		"signature: truncated":                   j.seg[0] + "." + j.seg[1] + "." + tokB64(sig[:len(sig)-1]),
		"signature: extended":                    j.seg[0] + "." + j.seg[1] + "." + tokB64(append(slices.Clone(sig), 0)),
		"signature: empty":                       j.seg[0] + "." + j.seg[1] + ".",
		"signature: zero bytes":                  j.seg[0] + "." + j.seg[1] + "." + tokB64(make([]byte, len(sig))),
		"signature: standard base64 alphabet":    j.seg[0] + "." + j.seg[1] + "." + base64.RawStdEncoding.EncodeToString(sig),
		"signature: non-canonical trailing bits": j.seg[0] + "." + j.seg[1] + "." + tokNonCanonical(j.seg[2]),
		// Foreign tokens.
		"token of another Sesame server": foreign,
		"token with another iss":         wrongIss,
		"token with another aud":         wrongAud,
		// Shapes.
		"extra segment":        g.access + ".e30",
		"trailing dot":         g.access + ".",
		"leading dot":          "." + g.access,
		"JWE-like 5 segments":  tokB64([]byte(`{"alg":"dir","enc":"A256GCM","kid":"`+kid+`"}`)) + "..AAAAAAAAAAAAAAAA." + j.seg[1] + ".AAAAAAAAAAAAAAAAAAAAAA",
		"JWE-like, genuine":    j.seg[0] + "." + j.seg[1] + "." + j.seg[2] + ".x.y",
		"padding on header":    j.seg[0] + "=." + j.seg[1] + "." + j.seg[2],
		"padding on payload":   j.seg[0] + "." + j.seg[1] + "=." + j.seg[2],
		"padding on signature": g.access + "==",
		"padded segments":      tokPad(j.seg[0]) + "." + tokPad(j.seg[1]) + "." + tokPad(j.seg[2]),
		"two segments":         j.seg[0] + "." + j.seg[1],
		"one segment":          j.seg[1],
		"quoted":               `"` + g.access + `"`,
		"token twice":          g.access + g.access,
	}
	for name, tok := range attacks {
		if tok == g.access {
			// A signature with neither '-' nor '_' reads the same in both
			// base64 alphabets: that mutation is no mutation this time.
			continue
		}
		tokWant401(t, a.userinfo(t, tok), name)
	}
	// Forged admin tokens never reach the admin API.
	for _, name := range []string{"payload: roles admin", "alg none, admin, no signature", "alg EdDSA, attacker key, admin", "HS256 admin with raw x", "HS256 admin with JWK JSON", "HS256 admin with base64 x"} {
		r := a.do(t, "GET", "/v1/admin/users", nil, e2eBearer(attacks[name]))
		tokWant401(t, r, "admin API with "+name)
	}
	// The foreign-iss token on the server whose iss it is works, and
	// ours is refused there.
	tokWant401(t, cIss.userinfo(t, g.access), "a's token on a node with another issuer")
	tokWant401(t, dAud.userinfo(t, g.access), "a's token on a node with another audience")
	tokWant401(t, b.userinfo(t, g.access), "a's token on another Sesame server")
	// The genuine tokens survived every attempt (nothing got revoked or
	// cached wrongly).
	a.wantAccessAlive(t, g.access, "genuine token after the attacks")
	a.wantAccessAlive(t, g2.access, "second genuine token after the attacks")
	if err := tokVerify(t, key, j); err != nil {
		t.Errorf("genuine token: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Errorf("the server fetched the jku/x5u URL of a token %d time(s); it must never follow a key URL from a token", n)
	}
}

// tokOtherChar returns a base64url character other than c.
func tokOtherChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// tokParseSID returns the sid claim of an access token without a
// testing.TB ("" if it cannot be read); tests then fail on the mismatch.
func tokParseSID(at string) string {
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		SID string `json:"sid"`
	}
	json.Unmarshal(b, &c)
	return c.SID
}

// tokNonCanonical returns the base64url segment with its unused trailing
// bits set: the same bytes under a lax decoder, another string.
func tokNonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		return seg + "A" // no unused bits: make the length invalid instead
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	unused := map[int]int{2: 4, 3: 2}[len(seg)%4]
	return seg[:len(seg)-1] + string(alphabet[last|(1<<unused-1)])
}

// tokPad adds base64 padding.
func tokPad(seg string) string {
	if n := len(seg) % 4; n != 0 {
		return seg + strings.Repeat("=", 4-n)
	}
	return seg + "===="
}

// TestTokenExpiry: an access token is refused once it has expired (with
// --token-leeway 0s), while its refresh family lives on; and a family ends
// --refresh-token-ttl after login, its access tokens with it.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--access-token-ttl", "2s", "--token-leeway", "0s")
	f := e2eStart(t, "--refresh-token-ttl", "6s", "--token-leeway", "0s")
	email := e2eEmail("expiry")
	s.register(t, email, e2ePassword)
	f.register(t, email, e2ePassword)

	start := time.Now()
	g := s.grant(t, email, e2ePassword)
	granted := time.Now() // the token expires at most 2 s after this, however long the grant queued
	if g.expiresIn < 1 || g.expiresIn > 2 {
		t.Errorf("expires_in = %v, want 2 (--access-token-ttl 2s)", g.expiresIn)
	}
	j := tokParse(t, g.access)
	if d := j.num("exp") - j.num("iat"); d < 1 || d > 2 {
		t.Errorf("exp - iat = %d, want 2", d)
	}
	r := s.userinfo(t, g.access)
	if time.Since(start) < 900*time.Millisecond {
		r.wantFor(t, "fresh 2s token", http.StatusOK)
	}

	fStart := time.Now()
	fg := f.grant(t, email, e2ePassword)
	fGranted := time.Now() // the family ends at most 6 s after this (6 s, not less, so that a loaded machine still refreshes inside it)
	if fg.expiresIn > 6 {
		t.Errorf("expires_in = %v with --refresh-token-ttl 6s, want at most 6: no access token outlives its family", fg.expiresIn)
	}
	if exp := tokParse(t, fg.access).num("exp"); exp > fStart.Add(6*time.Second).Unix()+1 {
		t.Errorf("access token exp %d is after its family ends (%d)", exp, fStart.Add(6*time.Second).Unix())
	}
	fg2 := f.mustRefresh(t, fg.refresh, "refresh of a 3s family")

	time.Sleep(time.Until(granted.Add(3100 * time.Millisecond)))
	s.wantAccessDead(t, g.access, "token 3s after it was issued with a 2s lifetime")
	tokWant401(t, s.do(t, "GET", "/v1/sessions", nil, e2eBearer(g.access)), "expired token on /v1/sessions")
	// The family lives on: a refresh gives a fresh, working token.
	g2 := s.mustRefresh(t, g.refresh, "refresh after the access token expired")
	s.wantAccessAlive(t, g2.access, "fresh token after refresh")
	// Revoking an expired token is 200 (RFC 7009: nothing to do).
	s.revoke(t, g.access, "revoking an expired token")

	time.Sleep(time.Until(fGranted.Add(6300 * time.Millisecond)))
	f.wantRefreshDead(t, fg2.refresh, "refresh token of a family past --refresh-token-ttl")
	f.wantAccessDead(t, fg2.access, "access token of a family past --refresh-token-ttl")
	f.wantAccessDead(t, fg.access, "first access token of a family past --refresh-token-ttl")
}

// TestTokenRefreshAtFamilyEnd refreshes in the last fraction of a second
// of a family's life (its end and the request in the same whole second).
// The family is still live, so the answer is a token (200) or, if the
// server will not mint one that short, 400 invalid_grant; never 503, which
// the contract keeps for a store that is down, and never an answer that
// leaves the refresh token spent without handing out its successor.
func TestTokenRefreshAtFamilyEnd(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--refresh-token-ttl", "2s")
	email := e2eEmail("family-end")
	s.register(t, email, e2ePassword)
	for attempt := 1; ; attempt++ {
		// Start the family early in a second, so that it ends early in one
		// and most of that last second is left to aim at.
		now := time.Now()
		time.Sleep(now.Truncate(time.Second).Add(time.Second + 300*time.Millisecond).Sub(now))
		g := s.grant(t, email, e2ePassword)
		sid := tokParseSID(g.access)
		r := s.do(t, "GET", "/v1/sessions", nil, e2eBearer(g.access))
		if !r.wantFor(t, "GET /v1/sessions", http.StatusOK) {
			return
		}
		var body struct {
			Sessions []struct {
				ID        string    `json:"id"`
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		var end time.Time
		for _, x := range body.Sessions {
			if x.ID == sid {
				end = x.ExpiresAt
			}
		}
		if end.IsZero() {
			t.Fatalf("token family %s not listed: %s", sid, r.body)
		}
		second := end.Truncate(time.Second)
		frac := end.Sub(second)
		if frac < 200*time.Millisecond || time.Until(second) < 50*time.Millisecond {
			if attempt < 4 {
				continue // too little of the last second left to aim at
			}
			t.Skipf("could not aim at the last second of a family in %d attempts", attempt)
		}
		time.Sleep(time.Until(second.Add(frac / 3)))
		r = s.refresh(t, g.refresh)
		sent := time.Now()
		switch r.status {
		case http.StatusOK:
			t.Logf("refresh %v before the family ends: 200", end.Sub(sent).Round(time.Millisecond))
			gg := tokGrantOf(t, r, "refresh in the family's last second")
			if gg.expiresIn > 1 {
				t.Errorf("expires_in = %v for a family that ends within a second", gg.expiresIn)
			}
		case http.StatusBadRequest:
			t.Logf("refresh %v before the family ends: 400 %s", end.Sub(sent).Round(time.Millisecond), r.body)
			r.wantFor(t, "refresh in the family's last second", http.StatusBadRequest, "invalid_grant")
		default:
			t.Errorf("refresh %v before the family ends (at %s): status %d, want 200 or 400 invalid_grant; body %s",
				end.Sub(sent).Round(time.Millisecond), end.Format("15:04:05.000"), r.status, r.body)
			// What a client does with a 503: retry. The retry must not be
			// taken for a stolen token.
			rr := s.refresh(t, g.refresh)
			t.Errorf("retrying that refresh: status %d %s", rr.status, rr.body)
			if strings.Contains(s.log.String(), "refresh token reuse") {
				t.Errorf("the retry of a refresh that got no successor was taken for a replayed token: the family was ended and token.reuse_detected recorded")
			}
		}
		return
	}
}

// TestTokenRefresh covers rotation, reuse detection, the race without a
// grace window, revocation by refresh or access token, and the audit log.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	adminAT := s.grant(t, s.createAdmin(t), e2ePassword).access
	email := e2eEmail("refresh")
	uid := s.register(t, email, e2ePassword)

	var reuseSID, revokedRefreshSID, revokedAccessSID string

	t.Run("rotation and reuse", func(t *testing.T) {
		g1 := s.grant(t, email, e2ePassword)
		sid := tokParse(t, g1.access).str("sid")
		reuseSID = sid
		g2 := s.mustRefresh(t, g1.refresh, "first refresh")
		g3 := s.mustRefresh(t, g2.refresh, "second refresh")
		seen := map[string]bool{}
		for i, g := range []tokGrant{g1, g2, g3} {
			if seen[g.refresh] || seen[g.access] {
				t.Errorf("grant %d repeats a token", i+1)
			}
			seen[g.refresh], seen[g.access] = true, true
			if got := tokParse(t, g.access).str("sid"); got != sid {
				t.Errorf("grant %d: sid %q, want the family's %q", i+1, got, sid)
			}
			if g.expiresIn < 590 || g.expiresIn > 600 {
				t.Errorf("grant %d: expires_in %v, want about 600", i+1, g.expiresIn)
			}
		}
		for i, at := range []string{g1.access, g2.access, g3.access} {
			s.wantAccessAlive(t, at, fmt.Sprintf("access token %d before any reuse", i+1))
		}
		// The first refresh token, retired, comes back: the family ends.
		r := s.refresh(t, g1.refresh)
		r.wantFor(t, "replayed refresh token", http.StatusBadRequest, "invalid_grant")
		tokWantNoStore(t, r, "replayed refresh token")
		s.wantAccessDead(t, g3.access, "newest access token right after a reuse")
		s.wantRefreshDead(t, g3.refresh, "newest refresh token after a reuse")
		s.wantRefreshDead(t, g2.refresh, "middle refresh token after a reuse")
		s.wantAccessDead(t, g1.access, "first access token after a reuse")
		s.wantAccessDead(t, g2.access, "second access token after a reuse")
		tokWant401(t, s.do(t, "GET", "/v1/sessions", nil, e2eBearer(g3.access)), "GET /v1/sessions with a token of the ended family")
	})

	t.Run("race without grace", func(t *testing.T) {
		g := s.grant(t, email, e2ePassword)
		results := make([]e2eResp, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range results {
			wg.Go(func() {
				<-start
				results[i] = s.refresh(t, g.refresh)
			})
		}
		close(start)
		wg.Wait()
		var won []tokGrant
		for _, r := range results {
			switch r.status {
			case http.StatusOK:
				won = append(won, tokGrantOf(t, r, "racing refresh"))
			case http.StatusBadRequest:
				r.wantFor(t, "racing refresh that lost", http.StatusBadRequest, "invalid_grant")
			default:
				t.Errorf("racing refresh: status %d, want 200 or 400; body %s", r.status, r.body)
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d of 2 racing refreshes with the same token succeeded without a grace window, want exactly 1", len(won))
		}
		// The loser was a replay: the winner's family is over.
		s.wantAccessDead(t, won[0].access, "winner's access token after the replay")
		s.wantRefreshDead(t, won[0].refresh, "winner's refresh token after the replay")
		s.wantAccessDead(t, g.access, "the family's first access token after the replay")
	})

	t.Run("json refresh and bad refresh tokens", func(t *testing.T) {
		g := s.grant(t, email, e2ePassword)
		r := s.do(t, "POST", "/v1/token", map[string]string{"grant_type": "refresh_token", "refresh_token": g.refresh})
		g2 := tokGrantOf(t, r, "JSON refresh")
		s.wantAccessAlive(t, g2.access, "access token from a JSON refresh")
		for name, rt := range map[string]string{
			"unknown":           e2eRandomSecret(),
			"garbage":           "garbage",
			"access token":      g2.access,
			"with a space":      g2.refresh + " ",
			"case changed":      strings.ToUpper(g2.refresh[:1]) + strings.ToLower(g2.refresh[1:]),
			"one char changed":  g2.refresh[:10] + tokOtherChar(g2.refresh[10]) + g2.refresh[11:],
			"twice":             g2.refresh + g2.refresh,
			"standard base64":   strings.NewReplacer("-", "+", "_", "/").Replace(g2.refresh) + "=",
			"padded":            g2.refresh + "=",
			"truncated":         g2.refresh[:len(g2.refresh)-1],
			"with a null byte":  g2.refresh + "\x00",
			"SQL":               "' OR '1'='1",
			"very long garbage": strings.Repeat("A", 4096),
		} {
			if name == "case changed" && strings.ToUpper(g2.refresh[:1])+strings.ToLower(g2.refresh[1:]) == g2.refresh {
				continue
			}
			if name == "standard base64" && !strings.ContainsAny(g2.refresh, "-_") {
				continue
			}
			r := s.refresh(t, rt)
			r.wantFor(t, "refresh with "+name, http.StatusBadRequest, "invalid_grant")
		}
		// None of those ended or rotated the family.
		s.wantAccessAlive(t, g2.access, "access token after bad refresh attempts")
		g3 := s.mustRefresh(t, g2.refresh, "refresh after bad refresh attempts")
		s.wantAccessAlive(t, g3.access, "access token of the refresh after bad attempts")
	})

	t.Run("revoke refresh token", func(t *testing.T) {
		g := s.grant(t, email, e2ePassword)
		revokedRefreshSID = tokParse(t, g.access).str("sid")
		g2 := s.mustRefresh(t, g.refresh, "refresh before revoking")
		s.wantAccessAlive(t, g2.access, "before revoking")
		r := s.form(t, "/v1/token/revoke", url.Values{"token": {g2.refresh}, "token_type_hint": {"refresh_token"}}.Encode())
		r.wantFor(t, "revoking a refresh token (form)", http.StatusOK)
		s.wantAccessDead(t, g2.access, "access token right after its refresh token was revoked")
		s.wantAccessDead(t, g.access, "older access token of the revoked family")
		s.wantRefreshDead(t, g2.refresh, "revoked refresh token")
		// Revoking again is still 200.
		s.revoke(t, g2.refresh, "revoking a revoked refresh token")
	})

	t.Run("revoke access token", func(t *testing.T) {
		g := s.grant(t, email, e2ePassword)
		revokedAccessSID = tokParse(t, g.access).str("sid")
		s.wantAccessAlive(t, g.access, "before revoking")
		r := s.do(t, "POST", "/v1/token/revoke", map[string]string{"token": g.access})
		r.wantFor(t, "revoking an access token (JSON)", http.StatusOK)
		s.wantAccessDead(t, g.access, "access token right after it was revoked")
		s.wantRefreshDead(t, g.refresh, "refresh token of the family whose access token was revoked")
		s.do(t, "POST", "/v1/token/revoke", map[string]string{"token": g.access}).wantFor(t, "revoking a revoked access token", http.StatusOK)
	})

	t.Run("revoke garbage and malformed requests", func(t *testing.T) {
		g := s.grant(t, email, e2ePassword)
		for name, tok := range map[string]string{
			"garbage":            "garbage",
			"unknown secret":     e2eRandomSecret(),
			"forged JWT":         tokForge(t, map[string]any{"alg": "none", "typ": "at+jwt"}, tokParse(t, g.access).claims, nil),
			"tampered JWT":       tokParse(t, g.access).seg[0] + "." + tokB64([]byte(`{"sid":"x"}`)) + "." + tokParse(t, g.access).seg[2],
			"very long garbage":  strings.Repeat("x", 5000),
			"JWT-shaped garbage": "a.b.c",
		} {
			s.revoke(t, tok, "revoking "+name+" (form)")
			s.do(t, "POST", "/v1/token/revoke", map[string]string{"token": tok}).wantFor(t, "revoking "+name+" (JSON)", http.StatusOK)
		}
		for _, c := range []struct{ name, ctype, body string }{
			{"empty form", e2eFormCT, ""},
			{"no token", e2eFormCT, "token_type_hint=refresh_token"},
			{"empty token", e2eFormCT, "token="},
			{"repeated token", e2eFormCT, url.Values{"token": {g.refresh, g.access}}.Encode()},
			{"bad percent escape", e2eFormCT, "token=%zz"},
			{"JSON without token", e2eJSONCT, `{}`},
			{"malformed JSON", e2eJSONCT, `{"token":`},
			{"JSON wrong type", e2eJSONCT, `{"token":1}`},
			{"text/plain", "text/plain", "token=" + g.refresh},
		} {
			s.do(t, "POST", "/v1/token/revoke", c.body, e2eHeader("Content-Type", c.ctype)).wantFor(t, "revoke: "+c.name, http.StatusBadRequest, "invalid_request")
		}
		// None of that touched the family.
		s.wantAccessAlive(t, g.access, "access token after garbage revocations")
		s.mustRefresh(t, g.refresh, "refresh after garbage revocations")
	})

	t.Run("audit", func(t *testing.T) {
		events := s.audit(t, adminAT, uid)
		for _, e := range events {
			if e["user_id"] != uid {
				t.Errorf("audit?user_id=%s returned an event of %v", uid, e["user_id"])
			}
		}
		for _, sid := range []string{reuseSID, revokedRefreshSID, revokedAccessSID} {
			if sid != "" {
				tokWantEvent(t, events, "token.issued", sid)
			}
		}
		if reuseSID != "" {
			tokWantEvent(t, events, "token.refreshed", reuseSID)
			tokWantEvent(t, events, "token.reuse_detected", reuseSID)
		}
		if revokedRefreshSID != "" {
			tokWantEvent(t, events, "token.revoked", revokedRefreshSID)
		}
		if revokedAccessSID != "" {
			tokWantEvent(t, events, "token.revoked", revokedAccessSID)
		}
		for _, e := range tokEvents(events, "token.issued") {
			if e["user_agent"] != e2eAgent || e["ip"] != "127.0.0.1" {
				t.Errorf("token.issued event %v: want ip 127.0.0.1 and user_agent %q", e, e2eAgent)
				break
			}
		}
	})
}

// TestTokenRefreshGrace: with --refresh-reuse-grace, racing refreshes get
// the same successor and the family keeps working; after the window a
// replay ends the family.
func TestTokenRefreshGrace(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--refresh-reuse-grace", "5s")
	email := e2eEmail("grace")
	s.register(t, email, e2ePassword)
	g := s.grant(t, email, e2ePassword)

	const n = 4
	results := make([]e2eResp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Go(func() {
			<-start
			results[i] = s.refresh(t, g.refresh)
		})
	}
	close(start)
	wg.Wait()
	var successor string
	var accesses []string
	for i, r := range results {
		gg := tokGrantOf(t, r, fmt.Sprintf("racing refresh %d of %d within the grace window", i+1, n))
		if successor == "" {
			successor = gg.refresh
		} else if gg.refresh != successor {
			t.Errorf("racing refreshes got different successors %q and %q, want the same", successor, gg.refresh)
		}
		accesses = append(accesses, gg.access)
	}
	for i, at := range append(accesses, g.access) {
		s.wantAccessAlive(t, at, fmt.Sprintf("access token %d after the race", i+1))
	}
	// The family keeps working.
	g3 := s.mustRefresh(t, successor, "refresh with the shared successor")
	s.wantAccessAlive(t, g3.access, "after the race")
	// A client that lost the answer retries within the window: same successor.
	g4 := s.mustRefresh(t, g3.refresh, "refresh")
	retired := time.Now()
	again := s.mustRefresh(t, g3.refresh, "retry within the grace window")
	if again.refresh != g4.refresh {
		t.Errorf("retry within the grace window got %q, want the same successor %q", again.refresh, g4.refresh)
	}
	s.wantAccessAlive(t, g4.access, "after the retry")
	s.wantAccessAlive(t, again.access, "retry's access token")
	// After the window, presenting the retired token again ends the family.
	time.Sleep(time.Until(retired.Add(5500 * time.Millisecond)))
	r := s.refresh(t, g3.refresh)
	r.wantFor(t, "retired refresh token after the grace window", http.StatusBadRequest, "invalid_grant")
	s.wantAccessDead(t, g4.access, "family's access token after a replay outside the window")
	s.wantRefreshDead(t, g4.refresh, "family's newest refresh token after a replay outside the window")
}

// TestTokenSessions: token families are sessions: listed beside cookie
// sessions, and ended by every way of ending sessions.
func TestTokenSessions(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	adminAT := s.grant(t, s.createAdmin(t), e2ePassword).access
	email := e2eEmail("sessions")
	uid := s.register(t, email, e2ePassword)
	password := e2ePassword
	sidOf := func(g tokGrant) string { return tokParseSID(g.access) }
	list := func(t *testing.T, auth e2eOpt) map[string]map[string]any {
		t.Helper()
		r := s.do(t, "GET", "/v1/sessions", nil, auth)
		if !r.wantFor(t, "GET /v1/sessions", http.StatusOK) {
			t.FailNow()
		}
		var body struct {
			Sessions []map[string]any `json:"sessions"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("GET /v1/sessions: %v: %s", err, r.body)
		}
		out := map[string]map[string]any{}
		for _, x := range body.Sessions {
			for _, k := range []string{"id", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "current"} {
				if _, ok := x[k]; !ok {
					t.Errorf("session %v lacks %q", x, k)
				}
			}
			id, _ := x["id"].(string)
			out[id] = x
		}
		return out
	}

	l := s.login(t, email, password)
	cookie, cookieSID := l.cookie, l.sessionID
	f1 := s.grant(t, email, password)

	t.Run("listing", func(t *testing.T) {
		byToken := list(t, e2eBearer(f1.access))
		if x := byToken[sidOf(f1)]; x == nil || x["current"] != true {
			t.Errorf("listing by bearer: the token family %s is %v, want listed with current true", sidOf(f1), x)
		}
		if x := byToken[cookieSID]; x == nil || x["current"] != false {
			t.Errorf("listing by bearer: the cookie session %s is %v, want listed with current false", cookieSID, x)
		}
		byCookie := list(t, e2eCookie(cookie))
		if x := byCookie[sidOf(f1)]; x == nil || x["current"] != false {
			t.Errorf("listing by cookie: the token family is %v, want listed with current false", x)
		}
		if x := byCookie[cookieSID]; x == nil || x["current"] != true {
			t.Errorf("listing by cookie: the cookie session is %v, want current true", x)
		}
		if x := byToken[sidOf(f1)]; x != nil && (x["user_agent"] != e2eAgent || x["ip"] != "127.0.0.1") {
			t.Errorf("token family listed as %v, want ip 127.0.0.1 and user_agent %q", x, e2eAgent)
		}
	})

	t.Run("another user cannot end the family", func(t *testing.T) {
		r := s.do(t, "DELETE", "/v1/sessions/"+sidOf(f1), nil, e2eBearer(adminAT))
		r.wantFor(t, "DELETE of another user's token family", http.StatusNotFound, "not_found")
		s.wantAccessAlive(t, f1.access, "family after another user tried to end it")
	})

	t.Run("DELETE /v1/sessions/{sid} from the cookie session", func(t *testing.T) {
		r := s.do(t, "DELETE", "/v1/sessions/"+sidOf(f1), nil, e2eCookie(cookie))
		r.wantFor(t, "ending the token family from the cookie session", http.StatusNoContent)
		s.wantAccessDead(t, f1.access, "access token right after its family was ended")
		s.wantRefreshDead(t, f1.refresh, "refresh token of the ended family")
		if x := list(t, e2eCookie(cookie))[sidOf(f1)]; x != nil {
			t.Errorf("ended family still listed: %v", x)
		}
		s.do(t, "DELETE", "/v1/sessions/"+sidOf(f1), nil, e2eCookie(cookie)).wantFor(t, "ending it again", http.StatusNotFound, "not_found")
	})

	t.Run("DELETE /v1/sessions/{sid} of the family by its own token", func(t *testing.T) {
		f := s.grant(t, email, password)
		r := s.do(t, "DELETE", "/v1/sessions/"+sidOf(f), nil, e2eBearer(f.access))
		r.wantFor(t, "a family ending itself", http.StatusNoContent)
		s.wantAccessDead(t, f.access, "access token of a family that ended itself")
		s.wantRefreshDead(t, f.refresh, "refresh token of a family that ended itself")
	})

	t.Run("DELETE /v1/sessions by bearer keeps only the caller's family", func(t *testing.T) {
		keep := s.grant(t, email, password)
		other := s.grant(t, email, password)
		r := s.do(t, "DELETE", "/v1/sessions", nil, e2eBearer(keep.access))
		r.wantFor(t, "DELETE /v1/sessions by bearer", http.StatusNoContent)
		s.wantAccessDead(t, other.access, "other family's access token")
		s.wantRefreshDead(t, other.refresh, "other family's refresh token")
		if s.getSession(t, cookie).status != http.StatusUnauthorized {
			t.Errorf("the cookie session survived DELETE /v1/sessions by another session's token")
		}
		s.wantAccessAlive(t, keep.access, "the caller's own family")
		s.mustRefresh(t, keep.refresh, "the caller's own family")
	})

	t.Run("logout of a cookie session", func(t *testing.T) {
		c := s.login(t, email, password).cookie
		f := s.grant(t, email, password)
		s.do(t, "DELETE", "/v1/session", nil, e2eCookie(c)).wantFor(t, "logout", http.StatusNoContent)
		tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(c)), "userinfo with the logged-out cookie")
		// A logout ends its own session (API.md: "the session is gone
		// server-side"), not the user's others: a separate token family
		// of the same user lives on.
		s.wantAccessAlive(t, f.access, "a separate token family of the user after a cookie logout")
		s.mustRefresh(t, f.refresh, "a separate token family of the user after a cookie logout")
	})

	t.Run("password change ends every token family", func(t *testing.T) {
		c := s.login(t, email, password).cookie
		f := s.grant(t, email, password)
		g := s.grant(t, email, password)
		newPassword := password + " v2"
		r := s.do(t, "POST", "/v1/password", map[string]string{"current_password": password, "new_password": newPassword}, e2eCookie(c))
		if !r.wantFor(t, "POST /v1/password by cookie", http.StatusNoContent) {
			t.FailNow()
		}
		password = newPassword
		s.wantAccessDead(t, f.access, "token family's access token right after a password change")
		s.wantRefreshDead(t, f.refresh, "token family's refresh token after a password change")
		s.wantAccessDead(t, g.access, "second family's access token after a password change")
		s.wantRefreshDead(t, g.refresh, "second family's refresh token after a password change")
		s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(c)).wantFor(t, "the changing cookie session survives", http.StatusOK)

		// The same by bearer: "every refresh token of the user ends", the
		// caller's own family included (it has no cookie session to keep).
		keep := s.grant(t, email, password)
		other := s.grant(t, email, password)
		newer := password + " v3"
		r = s.do(t, "POST", "/v1/password", map[string]string{"current_password": password, "new_password": newer}, e2eBearer(keep.access))
		if !r.wantFor(t, "POST /v1/password by bearer", http.StatusNoContent) {
			t.FailNow()
		}
		password = newer
		s.wantAccessDead(t, other.access, "other family's access token after a password change by bearer")
		s.wantRefreshDead(t, other.refresh, "other family's refresh token after a password change by bearer")
		tokWant401(t, s.do(t, "GET", "/v1/userinfo", nil, e2eCookie(c)), "cookie session after a password change by bearer")
		s.wantAccessDead(t, keep.access, "the caller's own access token after its password change by bearer")
		s.wantRefreshDead(t, keep.refresh, "the caller's own refresh token after its password change by bearer")
		s.grant(t, email, newer) // the new password signs in
	})

	t.Run("admin ends the user's sessions", func(t *testing.T) {
		f := s.grant(t, email, password)
		s.wantAccessAlive(t, f.access, "before the admin acts")
		r := s.do(t, "DELETE", "/v1/admin/users/"+uid+"/sessions", nil, e2eBearer(adminAT))
		r.wantFor(t, "admin DELETE /v1/admin/users/{id}/sessions", http.StatusNoContent)
		s.wantAccessDead(t, f.access, "access token right after the admin ended the user's sessions")
		s.wantRefreshDead(t, f.refresh, "refresh token after the admin ended the user's sessions")
		s.wantAccessAlive(t, adminAT, "the admin's own token")
	})

	t.Run("CLI sessions revoke while the server runs", func(t *testing.T) {
		f := s.grant(t, email, password)
		f2 := s.mustRefresh(t, f.refresh, "refresh before the CLI")
		s.wantAccessAlive(t, f2.access, "before the CLI")
		cliStart := time.Now()
		s.mustCLI(t, "", "sessions", "revoke", "--email", email)
		t.Logf("sesame sessions revoke took %v", time.Since(cliStart).Round(time.Millisecond))
		// The CLI is another process: the server hears of it within the
		// feed's bound (SQLite: a data_version poll every 100 ms).
		s.wantAccessGone(t, f2.access, "access token after sesame sessions revoke")
		s.wantRefreshDead(t, f2.refresh, "refresh token after sesame sessions revoke")
		s.wantRefreshDead(t, f.refresh, "retired refresh token after sesame sessions revoke")
		s.wantAccessAlive(t, adminAT, "another user's token")
	})
}

// TestTokenMultiNode: two servers on one database are one issuer: each
// accepts the other's tokens, and a family ended on one is refused on the
// other within the revocation feed's bound (API.md: "within a second on
// every other node"; a SQLite node polls data_version every 100 ms).
func TestTokenMultiNode(t *testing.T) {
	t.Parallel()
	a := e2eStart(t)
	b := e2eStartNode(t, "", a.dataDir, e2eNoEnv, "--issuer", a.issuer)
	email := e2eEmail("nodes")
	uid := a.register(t, email, e2ePassword)

	ga := a.grant(t, email, e2ePassword)
	b.wantAccessAlive(t, ga.access, "a's token on b")
	gb := b.mustRefresh(t, ga.refresh, "a's refresh token on b")
	a.wantAccessAlive(t, gb.access, "b's token on a")

	const tries = 3
	t.Run("reuse detected on one node", func(t *testing.T) {
		for i := range tries {
			g1 := a.grant(t, email, e2ePassword)
			g2 := a.mustRefresh(t, g1.refresh, "refresh on a")
			b.wantAccessAlive(t, g2.access, "a's token on b before the replay")
			a.refresh(t, g1.refresh).wantFor(t, "replay on a", http.StatusBadRequest, "invalid_grant")
			a.wantAccessDead(t, g2.access, fmt.Sprintf("attempt %d: newest access token on a right after a replay detected on a", i+1))
			b.wantAccessGone(t, g2.access, fmt.Sprintf("attempt %d: newest access token on b after a replay detected on a", i+1))
			b.wantRefreshDead(t, g2.refresh, "newest refresh token on b after a replay on a")
		}
	})

	t.Run("revocation on one node", func(t *testing.T) {
		for i := range tries {
			g := b.grant(t, email, e2ePassword)
			a.wantAccessAlive(t, g.access, "b's new token on a")
			b.revoke(t, g.refresh, "revoke on b")
			b.wantAccessDead(t, g.access, fmt.Sprintf("attempt %d: token on b right after its family was revoked on b", i+1))
			a.wantAccessGone(t, g.access, fmt.Sprintf("attempt %d: token on a after its family was revoked on b", i+1))
			a.wantRefreshDead(t, g.refresh, "refresh token on a after revocation on b")
		}
	})

	t.Run("admin on one node ends the user's families on the other", func(t *testing.T) {
		adminAT := a.grant(t, a.createAdmin(t), e2ePassword).access
		for i := range tries {
			g := b.grant(t, email, e2ePassword)
			b.wantAccessAlive(t, g.access, "token on b before the admin acts on a")
			a.do(t, "DELETE", "/v1/admin/users/"+uid+"/sessions", nil, e2eBearer(adminAT)).wantFor(t, "admin on a", http.StatusNoContent)
			a.wantAccessDead(t, g.access, fmt.Sprintf("attempt %d: token on a right after the admin ended the user's sessions on a", i+1))
			b.wantAccessGone(t, g.access, fmt.Sprintf("attempt %d: token on b after the admin ended the user's sessions on a", i+1))
			b.wantRefreshDead(t, g.refresh, "refresh token on b after the admin acted on a")
		}
	})
}

// TestTokenKeyRotation: "sesame keys rotate" while the server runs makes new
// tokens carry the new kid within 10 s, and tokens of the old key keep
// working, their key still in the JWKS.
func TestTokenKeyRotation(t *testing.T) {
	t.Parallel()
	s := e2eStart(t)
	email := e2eEmail("rotation")
	s.register(t, email, e2ePassword)
	g := s.grant(t, email, e2ePassword)
	oldKid := s.kid
	if k := tokParse(t, g.access).header["kid"]; k != oldKid {
		t.Fatalf("first token's kid %v, want the logged %q", k, oldKid)
	}
	oldKey := s.jwk(t, oldKid)

	out := s.mustCLI(t, "", "keys", "rotate")
	rotated := time.Now()
	t.Logf("sesame keys rotate: %s", strings.TrimSpace(out))

	// Refresh (no password hashing) until a token carries a new kid.
	rt := g.refresh
	var newTok tokJWT
	var oldToks []string
	for {
		gg := s.mustRefresh(t, rt, "refresh while waiting for the new key")
		rt = gg.refresh
		j := tokParse(t, gg.access)
		if j.header["kid"] != oldKid {
			newTok = j
			break
		}
		oldToks = append(oldToks, gg.access)
		if time.Since(rotated) > 10*time.Second {
			t.Fatalf("10s after sesame keys rotate the server still signs with kid %q", oldKid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("new kid %v after %v", newTok.header["kid"], time.Since(rotated).Round(time.Millisecond))
	newKid, _ := newTok.header["kid"].(string)
	if !strings.Contains(out, newKid) {
		t.Errorf("the new kid %q is not the one sesame keys rotate reported: %q", newKid, out)
	}
	if newTok.header["alg"] != "EdDSA" {
		t.Errorf("new key's alg %v, want EdDSA (that of the current key)", newTok.header["alg"])
	}
	// The JWKS has both; each token verifies with its own key.
	newKey := s.jwk(t, newKid)
	if err := tokVerify(t, newKey, newTok); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
	if k := s.jwk(t, oldKid); !bytes.Equal(tokMarshal(t, k), tokMarshal(t, oldKey)) {
		t.Errorf("old key changed in the JWKS: %v, was %v", k, oldKey)
	}
	if err := tokVerify(t, oldKey, tokParse(t, g.access)); err != nil {
		t.Errorf("token of the old key: %v", err)
	}
	if err := tokVerify(t, oldKey, newTok); err == nil {
		t.Errorf("the new token verifies with the old key: the key did not change")
	}
	s.wantAccessAlive(t, newTok.raw, "token of the new key")
	s.wantAccessAlive(t, g.access, "token of the old key after the rotation")
	for i, at := range oldToks {
		s.wantAccessAlive(t, at, fmt.Sprintf("old-key token %d (never presented before) after the rotation", i+1))
	}
	// A second poll later the old key is still published and accepted.
	time.Sleep(5500 * time.Millisecond)
	s.jwk(t, oldKid)
	s.wantAccessAlive(t, g.access, "token of the old key a poll later")
	// The discovery document is unchanged.
	r := s.do(t, "GET", "/.well-known/openid-configuration", nil)
	if r.wantFor(t, "discovery after rotation", http.StatusOK) {
		algs, _ := r.json(t)["id_token_signing_alg_values_supported"].([]any)
		if !slices.Contains(algs, any("EdDSA")) {
			t.Errorf("after rotation, id_token_signing_alg_values_supported = %v", algs)
		}
	}
}

// TestTokenKeyRotationOtherAlg: "sesame keys rotate --signing-alg ES256"
// (offered by "sesame help") while an EdDSA server runs. Whatever the
// server then signs with, every token it hands out must verify, with its
// key in the JWKS, until it expires. The short TTL makes the retention
// window (TTL + leeway + two key polls) 12 s instead of 10 min 15 s.
func TestTokenKeyRotationOtherAlg(t *testing.T) {
	t.Parallel()
	s := e2eStart(t, "--access-token-ttl", "2s", "--token-leeway", "0s")
	email := e2eEmail("rotation-alg")
	s.register(t, email, e2ePassword)
	g := s.grant(t, email, e2ePassword)
	out := s.mustCLI(t, "", "keys", "rotate", "--signing-alg", "ES256")
	rotated := time.Now()
	t.Logf("sesame keys rotate --signing-alg ES256: %s", strings.TrimSpace(out))

	type issued struct {
		at  string
		kid string
		exp time.Time
	}
	var live []issued
	rt := g.refresh
	// Past retention (12 s) plus two key polls (10 s) plus margin.
	for time.Since(rotated) < 25*time.Second && !t.Failed() {
		gg := s.mustRefresh(t, rt, "refresh")
		rt = gg.refresh
		j := tokParse(t, gg.access)
		kid, _ := j.header["kid"].(string)
		if j.header["alg"] != "EdDSA" {
			t.Errorf("EdDSA server signed with alg %v after an ES256 rotation", j.header["alg"])
		}
		live = append(live, issued{gg.access, kid, time.Unix(j.num("exp"), 0)})
		_, keys := s.jwks(t)
		published := map[string]bool{}
		for _, k := range keys {
			published[fmt.Sprint(k["kid"])] = true
		}
		var still []issued
		bad := 0
		for _, x := range live {
			// Only tokens with a comfortable margin before exp.
			if time.Until(x.exp) < 400*time.Millisecond {
				continue
			}
			still = append(still, x)
			if bad > 0 {
				continue // one report an iteration
			}
			if !published[x.kid] {
				bad++
				t.Errorf("%.1fs after the rotation: kid %s of a token that expires in %v is gone from the JWKS",
					time.Since(rotated).Seconds(), x.kid, time.Until(x.exp).Round(time.Millisecond))
			}
			if r := s.userinfo(t, x.at); r.status != http.StatusOK {
				bad++
				t.Errorf("%.1fs after the rotation: a token the server issued (kid %s) that expires in %v gets %d, want 200",
					time.Since(rotated).Seconds(), x.kid, time.Until(x.exp).Round(time.Millisecond), r.status)
			}
		}
		live = still
		time.Sleep(150 * time.Millisecond)
	}
}
