package main

import (
	"strings"
	"testing"
)

func TestRedactHidesSecrets(t *testing.T) {
	for _, s := range []string{
		"postgres://u:S3cret@db:5432/sesame",
		"postgres://u@db/sesame?password=S3cret&sslmode=require",
		"postgres://u@db/sesame?sslpassword=S3cret",
		"redis://:S3cret@127.0.0.1:6379/0",
		"postgres://u:S3cret@[bad",
	} {
		if got := redact(s); strings.Contains(got, "S3cret") {
			t.Errorf("redact(%q) = %q: the secret shows", s, got)
		}
	}
	if got := redact("sqlite:./sesame-data/sesame.db"); got != "sqlite:./sesame-data/sesame.db" {
		t.Errorf("redact changed a path: %q", got)
	}
}
