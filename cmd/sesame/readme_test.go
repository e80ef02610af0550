package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeFirstHour holds the README to what a newcomer on a fresh clone
// needs: the reference in the repository (never ../shared, which a clone
// does not have), the host the default issuer names (127.0.0.1, or OIDC
// clients refuse the discovery document), a cookie jar instead of copying
// cookies by hand, and what the first build costs.
func TestReadmeFirstHour(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, want := range []string{"docs/API.md", "/v1/openapi.json", "curl -s -c jar -b jar 127.0.0.1:8080", "go build -v", "127.0.0.1:8080"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	for _, bad := range []string{"localhost:8080", "Cookie: __Host-sesame=...", "FIRST_BUILD_COST"} {
		if strings.Contains(readme, bad) {
			t.Errorf("README.md still has %q", bad)
		}
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append(docs, "../../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "../shared") || strings.Contains(string(b), "shared/API.md") {
			t.Errorf("%s points the reader at ../shared, which a clone does not have", f)
		}
	}
}
