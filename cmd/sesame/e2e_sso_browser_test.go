package main

// Single sign-on across subdomains in a real browser: headless Chromium,
// with every *.example.test name mapped to 127.0.0.1 and HTTPS from a test
// certificate authority, signs in once through nginx in front of
// app.example.test and is then signed in on wiki.example.test too.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sesameauth/sesame/httpauth"
)

// testCA writes a certificate authority and a certificate it signed for
// names into dir, and returns the files and the leaf's SPKI hash (the form
// Chromium's --ignore-certificate-errors-spki-list takes).
func testCA(t *testing.T, dir string, names ...string) (certFile, keyFile, caFile, spki string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Sesame test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der ...[]byte) string {
		var b []byte
		for _, d := range der {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return write("cert.pem", "CERTIFICATE", leafDER, caDER), write("key.pem", "PRIVATE KEY", keyDER),
		write("ca.pem", "CERTIFICATE", caDER), base64.StdEncoding.EncodeToString(sum[:])
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium is not installed; skipping")
	return ""
}

func TestSingleSignOnInChromium(t *testing.T) {
	chromium := findChromium(t)
	nginx := needProgram(t, "nginx")
	dir := t.TempDir()
	cert, key, caFile, spki := testCA(t, dir, "auth.example.test", "app.example.test", "wiki.example.test")

	// Sesame on https://auth.example.test:PORT, sharing the sign-in with
	// every host under example.test.
	sesameAddr := freeAddr(t)
	_, sesamePort, _ := net.SplitHostPort(sesameAddr)
	issuer := "https://auth.example.test:" + sesamePort
	s := e2eStartWith(t, "", dir, []string{"serve", "--addr", sesameAddr, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", cert, "--tls-key", key, "--issuer", issuer, "--cookie-domain", "example.test", "--log-level", "debug"}, e2eNoEnv)
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(s.log.String(), "\n") {
				if strings.Contains(l, "forward auth") || strings.Contains(l, "login") || strings.Contains(l, "refused") {
					t.Log(l)
				}
			}
		}
	})
	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "auth.example.test"}}
	s.base = "https://" + sesameAddr
	email := e2eEmail("sso")
	s.register(t, email, e2ePassword)

	// nginx with TLS for app. and wiki.example.test, from the example
	// configuration; the original URL keeps the port ($http_host), since
	// the test cannot listen on 443.
	proxyAddr := freeAddr(t)
	_, proxyPort, _ := net.SplitHostPort(proxyAddr)
	v, err := httpauth.NewRemoteVerifier(context.Background(), issuer, "https://app.example.test:"+proxyPort,
		httpauth.WithJWKSURL(s.base+"/.well-known/jwks.json"), httpauth.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	up := newRecordingUpstream(t, v)
	site := readExample(t, "nginx-app.conf", sesameAddr, up.addr())
	site = strings.NewReplacer(
		"listen 80;", fmt.Sprintf("listen %s ssl;\n    ssl_certificate %s;\n    ssl_certificate_key %s;", proxyAddr, cert, key),
		"server_name app.example.test;", "server_name app.example.test wiki.example.test;",
		"proxy_pass http://sesame/v1/auth-request;", "proxy_pass https://sesame/v1/auth-request;\n        proxy_ssl_server_name on;\n        proxy_ssl_name auth.example.test;\n        proxy_ssl_verify on;\n        proxy_ssl_trusted_certificate "+caFile+";",
		"$scheme://$host$request_uri", "$scheme://$http_host$request_uri",
	).Replace(site)
	runNginx(t, nginx, dir, site, proxyAddr)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP *.example.test 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	app := "https://app.example.test:" + proxyPort
	wiki := "https://wiki.example.test:" + proxyPort
	var loginURL, afterLogin, appBody, wikiURL, wikiBody string
	// waitFor waits until the page is at a URL starting with prefix.
	waitFor := func(prefix string, at *string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			for {
				if err := chromedp.Location(at).Do(ctx); err != nil {
					return err
				}
				if strings.HasPrefix(*at, prefix) {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("still at %q waiting for %s: %w", *at, prefix, ctx.Err())
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(app+"/docs/?page=1"),
		chromedp.WaitVisible(`#email`, chromedp.ByID),
		chromedp.Location(&loginURL),
		chromedp.SendKeys(`#email`, email, chromedp.ByID),
		chromedp.SendKeys(`#password`, e2ePassword, chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		waitFor(app, &afterLogin),
		chromedp.Text(`body`, &appBody),
		chromedp.Navigate(wiki+"/"),
		chromedp.WaitReady(`body`),
		chromedp.Location(&wikiURL),
		chromedp.Text(`body`, &wikiBody),
	)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if strings.Contains(s.log.String(), "cross-origin") {
		t.Logf("server log: %s", s.log)
	}
	if !strings.HasPrefix(loginURL, issuer+"/login?return_to=") {
		t.Errorf("not signed in, the browser landed on %q, want Sesame's sign-in page at %s", loginURL, issuer)
	}
	if afterLogin != app+"/docs/?page=1" || appBody != "upstream ok" {
		t.Errorf("after signing in: %q showing %q, want %s/docs/?page=1 from the upstream", afterLogin, appBody, app)
	}
	if wikiURL != wiki+"/" || wikiBody != "upstream ok" {
		t.Errorf("on the sibling host: %q showing %q, want %s/ from the upstream without signing in again", wikiURL, wikiBody, wiki)
	}
	var hits []upstreamHit
	for _, h := range up.take() {
		if h.path != "/favicon.ico" { // the browser's own extra request
			hits = append(hits, h)
		}
	}
	if len(hits) != 2 {
		t.Fatalf("the upstream got %d requests, want 2 (app after sign-in, wiki)", len(hits))
	}
	for _, h := range hits {
		if h.header.Get("Remote-Email") != email {
			t.Errorf("the upstream got Remote-Email %q for %s, want %s", h.header.Get("Remote-Email"), h.path, email)
		}
		if c := strings.Join(h.header.Values("Cookie"), ";"); strings.Contains(c, "sesame") {
			t.Errorf("the upstream got Sesame's cookie: %q", c)
		}
	}
	if !strings.HasSuffix(hits[0].claims, "aud=https://app.example.test:"+proxyPort) || !strings.HasPrefix(hits[0].path, "/docs/") {
		t.Errorf("the upstream's token check on app (%s): %q", hits[0].path, hits[0].claims)
	}
}
