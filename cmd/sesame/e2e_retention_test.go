package main

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	_ "modernc.org/sqlite"
)

// e2eCount runs a count query on the server's SQLite database, read-only,
// beside the running server.
func e2eCount(t *testing.T, s *e2eServer, query string, args ...any) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dataDir, "sesame.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestRefreshHistoryAndAuditBounded refreshes one family many times over
// HTTP on the embedded default: the family's rows stay bounded, its oldest
// token (long forgotten by the store) still ends the family, and audit
// events older than --audit-retention are swept while newer ones stay, one
// token.refreshed row per refresh.
func TestRefreshHistoryAndAuditBounded(t *testing.T) {
	const retention = 2 * time.Second
	s := e2eStart(t, "--audit-retention", retention.String(), "--sweep-interval", "100ms")
	email := e2eEmail("history")
	s.register(t, email, e2ePassword)
	g := s.grant(t, email, e2ePassword)
	first := g.refresh
	const refreshes = 3 * sesame.RetiredRefreshTokensKept
	for i := range refreshes {
		g = s.mustRefresh(t, g.refresh, "refresh")
		if i == 0 {
			// The grant and the first refresh were recorded, once each
			// (checked before a sweep can reach them).
			if n := e2eCount(t, s, `SELECT count(*) FROM audit_events WHERE type = ?`, sesame.EventTokenRefreshed); n != 1 {
				t.Errorf("token.refreshed events after one refresh: %d, want 1", n)
			}
		}
	}
	if n := e2eCount(t, s, `SELECT count(*) FROM refresh_tokens`); n != sesame.RetiredRefreshTokensKept+1 {
		t.Errorf("after %d refreshes of one family, %d refresh-token rows; want the current one and %d retired",
			refreshes, n, sesame.RetiredRefreshTokensKept)
	}

	// Every event is older than the retention within a few sweeps.
	deadline := time.Now().Add(retention + 20*time.Second)
	for e2eCount(t, s, `SELECT count(*) FROM audit_events`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("audit events older than --audit-retention %s were not swept within %s", retention, retention+20*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A fresh one stays until it is older than the retention.
	recorded := time.Now()
	g = s.mustRefresh(t, g.refresh, "refresh after the sweep")
	if n := e2eCount(t, s, `SELECT count(*) FROM audit_events WHERE type = ?`, sesame.EventTokenRefreshed); n != 1 && time.Since(recorded) < retention {
		t.Errorf("a token.refreshed event younger than the retention: %d rows, want 1", n)
	}

	// The first token, retired 3*64 refreshes ago, ends the family.
	s.refresh(t, first).want(t, http.StatusBadRequest, "invalid_grant")
	s.refresh(t, g.refresh).wantFor(t, "the current refresh token after a forgotten one was replayed", http.StatusBadRequest, "invalid_grant")
	tokWant401(t, s.userinfo(t, g.access), "an access token of the family ended by a forgotten token")
	if n := e2eCount(t, s, `SELECT count(*) FROM audit_events WHERE type = ?`, sesame.EventTokenReuse); n != 1 {
		t.Errorf("token.reuse_detected events: %d, want 1", n)
	}
	if n := e2eCount(t, s, `SELECT count(*) FROM refresh_tokens`); n != 0 {
		t.Errorf("%d refresh-token rows after the family ended, want 0", n)
	}
}
