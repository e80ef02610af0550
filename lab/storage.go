package lab

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/pgstore"
	"github.com/sesameauth/sesame/redisstore"
	"github.com/sesameauth/sesame/sqlitestore"
)

// labStore is one of the session stores opened in the lab's own process,
// for what needs no server: counting its bytes and its calls.
type labStore struct {
	kind     string
	sessions sesame.SessionStore
	refresh  sesame.RefreshStore
	revlog   sesame.RevocationLog
	users    sesame.UserStore // where the store keeps users too; else a memstore
	// size returns the bytes the store holds now, as the store itself
	// counts them (heap, database pages, Redis MEMORY USAGE).
	size  func(ctx context.Context) (int64, error)
	how   string // how size counts, for the report
	close func()
}

// openLabStore opens a store of kind in this process, in dir when it is a
// file.
func (r *labRun) openLabStore(ctx context.Context, kind, dir string) (*labStore, error) {
	s := &labStore{kind: kind}
	switch kind {
	case "memory":
		m := memstore.New()
		s.sessions, s.users, s.close = m, memstore.New(), func() {}
		s.size = func(context.Context) (int64, error) { return heapBytes(), nil }
		s.how = "Go heap in use after a full GC (runtime.ReadMemStats HeapAlloc)"
	case "sqlite":
		path := filepath.Join(dir, "lab.db")
		st, err := sqlitestore.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			st.Close()
			return nil, err
		}
		s.sessions, s.users, s.close = st, st, func() { db.Close(); st.Close() }
		s.size = func(ctx context.Context) (int64, error) {
			var pages, size int64
			if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
				return 0, err
			}
			if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
				return 0, err
			}
			return pages * size, nil
		}
		s.how = "database pages in use (PRAGMA page_count × page_size)"
	case "postgres":
		st, err := pgstore.Open(ctx, r.pgDB)
		if err != nil {
			return nil, err
		}
		conn, err := pgx.Connect(ctx, r.pgDB)
		if err != nil {
			st.Close()
			return nil, err
		}
		s.sessions, s.users, s.close = st, st, func() { conn.Close(context.Background()); st.Close() }
		s.size = func(ctx context.Context) (int64, error) {
			var n int64
			err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
			return n, err
		}
		s.how = "pg_database_size of the lab's own database (tables and indexes)"
	case "redis":
		st, err := redisstore.Open(ctx, r.redis.url)
		if err != nil {
			return nil, err
		}
		s.sessions, s.users, s.close = st, memstore.New(), func() { st.Close() }
		s.size = func(ctx context.Context) (int64, error) {
			n, _, err := r.redis.memoryUsage(ctx)
			return n, err
		}
		s.how = "MEMORY USAGE of every key of the lab's database, summed"
	default:
		return nil, fmt.Errorf("unknown store %q", kind)
	}
	var ok bool
	if s.refresh, ok = s.sessions.(sesame.RefreshStore); !ok {
		s.close()
		return nil, fmt.Errorf("%s keeps no refresh tokens", kind)
	}
	if s.revlog, ok = s.sessions.(sesame.RevocationLog); !ok {
		s.close()
		return nil, fmt.Errorf("%s keeps no revocation log", kind)
	}
	return s, nil
}

// heapBytes returns the Go heap in use after a full collection.
func heapBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// A browser's User-Agent, as a session records it.
const labUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// signIns makes what a sign-in leaves on the server: a cookie session, or
// a token session with its first refresh token (tokens.go's Grants.Password).
// Every string is a fresh allocation, as one read from a request is.
func signIns(ctx context.Context, s *labStore, n int, withTokens bool, workers int) error {
	now := time.Now()
	_, err := inParallel(n, workers, func(i int) (struct{}, error) {
		_, hash := sesame.NewSecret()
		sess := sesame.Session{
			ID: sesame.NewID(), SecretHash: hash, UserID: sesame.NewID(),
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(30 * time.Minute), AbsoluteExpiresAt: now.Add(12 * time.Hour),
			IP: strings.Clone(fmt.Sprintf("203.0.%d.%d", i/250%250, i%250+1)), UserAgent: strings.Clone(labUserAgent), Kind: sesame.KindCookie,
		}
		if withTokens {
			sess.Kind = sesame.KindToken
			sess.ExpiresAt, sess.AbsoluteExpiresAt = now.Add(720*time.Hour), now.Add(720*time.Hour)
		}
		if err := s.sessions.CreateSession(ctx, sess); err != nil {
			return struct{}{}, err
		}
		if withTokens {
			_, rh := sesame.NewSecret()
			if err := s.refresh.CreateRefreshToken(ctx, sesame.RefreshToken{Hash: rh, SessionID: sess.ID, UserID: sess.UserID, CreatedAt: now, ExpiresAt: sess.ExpiresAt}); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// storageStep measures the storage row: the bytes a store keeps per
// signed-in user (cookie session; token session and its refresh token),
// the bytes a client sends per request, and the memory store's growth.
func storageStep(ctx context.Context, r *labRun) error {
	row := r.row("storage")
	n := 2000
	if r.quick {
		n = 200
	}
	perStore := table{caption: fmt.Sprintf("Bytes the store keeps per signed-in user (%d sign-ins of each kind, written through the store's own code in this process)", n),
		head: []string{"store", "cookie session", "token session + refresh token", "counted as"}}
	var memCookie, memToken float64
	for _, kind := range r.stores {
		r.progress("storage: %d cookie and %d token sign-ins into %s", n, n, kind)
		dir, err := os.MkdirTemp("", "sesame-lab-store-")
		if err != nil {
			return err
		}
		s, err := r.openLabStore(ctx, kind, dir)
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("%s: %w", kind, err)
		}
		per := func(withTokens bool) (float64, error) {
			before, err := s.size(ctx)
			if err != nil {
				return 0, err
			}
			// One writer for the page-based stores: PostgreSQL extends a
			// table by several pages at once when writers contend, which
			// would count pages that hold nothing yet.
			workers := 1
			if kind == "redis" {
				workers = 4
			}
			if err := signIns(ctx, s, n, withTokens, workers); err != nil {
				return 0, err
			}
			after, err := s.size(ctx)
			return float64(after-before) / float64(n), err
		}
		cookie, err := per(false)
		var tok float64
		if err == nil {
			tok, err = per(true)
		}
		s.close()
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if r.redis != nil && kind == "redis" {
			if err := r.redis.reset(ctx); err != nil {
				return err
			}
		}
		r.add("storage", "server bytes per signed-in user, cookie session, "+kind, "bytes", cookie, "")
		r.add("storage", "server bytes per signed-in user, token session + refresh token, "+kind, "bytes", tok, "cookie session, "+kind, cookie)
		perStore.rows = append(perStore.rows, []string{kind, fmt.Sprintf("%.0f B", cookie), fmt.Sprintf("%.0f B", tok), s.how})
		if kind == "memory" {
			memCookie, memToken = cookie, tok
		}
	}
	row.tables = append(row.tables, perStore)
	row.plots = append(row.plots, barPlot("Server bytes per signed-in user", "bytes", perStoreBars(perStore)))

	// What the client sends.
	r.progress("storage: request headers, one server per signing algorithm")
	hdr, err := headerSizes(ctx, r)
	if err != nil {
		return err
	}
	hdrTable := table{caption: "Bytes of the credential header on every request (name, value and CRLF)", head: []string{"credential", "bytes", "× the cookie"}}
	cookieBytes := hdr[0].bytes
	var bars []bar
	for i, h := range hdr {
		if i == 0 {
			r.add("storage", "request header bytes, "+h.name, "bytes", h.bytes, "")
		} else {
			r.add("storage", "request header bytes, "+h.name, "bytes", h.bytes, hdr[0].name, cookieBytes)
		}
		hdrTable.rows = append(hdrTable.rows, []string{h.name, fmt.Sprintf("%.0f", h.bytes), fmt.Sprintf("%.1f", h.bytes/cookieBytes)})
		bars = append(bars, bar{h.name, h.bytes, ""})
	}
	row.tables = append(row.tables, hdrTable)
	row.plots = append(row.plots, barPlot("Bytes the client sends with each request", "bytes", bars))

	// Growth of the memory store.
	counts := []int{1_000, 10_000, 100_000, 1_000_000}
	if r.quick {
		counts = counts[:3]
	}
	growth := table{caption: "Go heap of the memory store after N sign-ins (in this process, after a full GC)", head: []string{"sign-ins", "cookie sessions", "token sessions + refresh tokens"}}
	var cookieLine, tokenLine []xy
	for _, c := range counts {
		r.progress("storage: memory store growth, %d sign-ins of each kind", c)
		var mib [2]float64
		for j, withTokens := range []bool{false, true} {
			s, err := r.openLabStore(ctx, "memory", "")
			if err != nil {
				return err
			}
			before := heapBytes()
			if err := signIns(ctx, s, c, withTokens, runtime.NumCPU()); err != nil {
				return err
			}
			mib[j] = float64(heapBytes()-before) / (1 << 20)
			runtime.KeepAlive(s)
		}
		cookieLine, tokenLine = append(cookieLine, xy{float64(c), mib[0]}), append(tokenLine, xy{float64(c), mib[1]})
		growth.rows = append(growth.rows, []string{fmt.Sprint(c), fmt.Sprintf("%.1f MiB", mib[0]), fmt.Sprintf("%.1f MiB", mib[1])})
	}
	last := counts[len(counts)-1]
	r.add("storage", fmt.Sprintf("memory store heap at %d cookie sessions", last), "MiB", cookieLine[len(cookieLine)-1].y, "")
	r.add("storage", fmt.Sprintf("memory store heap at %d token sessions + refresh tokens", last), "MiB", tokenLine[len(tokenLine)-1].y, fmt.Sprintf("memory store heap at %d cookie sessions", last), cookieLine[len(cookieLine)-1].y)
	row.tables = append(row.tables, growth)
	row.plots = append(row.plots, linePlot("Memory store: heap against sign-ins", "sign-ins (log)", "MiB (log)", true,
		[]series{{"cookie sessions", cookieLine}, {"token sessions + refresh tokens", tokenLine}}))

	bearer := hdr[1].bytes
	row.Measured = fmt.Sprintf("A signed-in user costs the server %s with a cookie and %s with tokens (the refresh family is server state too); %d sessions take %.0f MiB of memory store. The bearer header is %.0f bytes against the cookie's %.0f (%.1f×), on every request.",
		bytesPerStore(perStore, 1), bytesPerStore(perStore, 2), last, cookieLine[len(cookieLine)-1].y, bearer, cookieBytes, bearer/cookieBytes)
	verdict := "Half true: tokens move bytes onto every request, yet Sesame's tokens keep at least as much server state (a refresh family), and a session costs a few hundred bytes, not a “heavy load”."
	if memToken > 0 && memCookie > 0 && memToken < memCookie/2 {
		verdict = "True here: the token sign-in keeps less on the server than the cookie session."
	}
	row.Verdict = verdict
	row.Notes = append(row.Notes,
		"An access token itself keeps nothing on the server; the refresh token that renews it does, and Sesame keeps each family's retired refresh tokens until the family ends (Redis: the newest 64), so a family that refreshes often grows.",
		"Counted through each store's own code in the lab's process: the memory store as Go heap, SQLite as database pages, PostgreSQL as pg_database_size, Redis as MEMORY USAGE. Page-based stores grow in pages, so small runs round up.")
	return nil
}

// bytesPerStore lists column col of the per-store table as "a B (memory),
// b B (sqlite)".
func bytesPerStore(t table, col int) string {
	var parts []string
	for _, row := range t.rows {
		parts = append(parts, row[col]+" ("+row[0]+")")
	}
	return strings.Join(parts, ", ")
}

func perStoreBars(t table) []bar {
	var bars []bar
	for _, row := range t.rows {
		var c, k float64
		fmt.Sscanf(row[1], "%f", &c)
		fmt.Sscanf(row[2], "%f", &k)
		bars = append(bars, bar{"cookie, " + row[0], c, ""}, bar{"token, " + row[0], k, ""})
	}
	return bars
}

type headerSize struct {
	name  string
	bytes float64
}

// headerSizes starts one server per signing algorithm and measures the
// header a client sends: the session cookie, then a bearer access token
// signed with each algorithm.
func headerSizes(ctx context.Context, r *labRun) ([]headerSize, error) {
	algs := []string{"EdDSA", "ES256", "RS256"}
	out := make([]headerSize, 1+len(algs))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i, alg := range algs {
		wg.Go(func() {
			err := func() error {
				p, stop, err := r.server("memory", "--signing-alg", alg).start(ctx)
				if err != nil {
					return err
				}
				defer stop()
				if err := register(ctx, p.base); err != nil {
					return err
				}
				t, err := retryBusy(ctx, 10, func() (tokens, error) { t, _, err := passwordGrant(ctx, p.base); return t, err })
				if err != nil {
					return err
				}
				mu.Lock()
				out[1+i] = headerSize{"bearer token, " + alg, float64(len("Authorization: Bearer \r\n") + len(t.AccessToken))}
				mu.Unlock()
				if i == 0 {
					cookie, err := retryBusy(ctx, 10, func() (string, error) { return logIn(ctx, p.base) })
					if err != nil {
						return err
					}
					mu.Lock()
					out[0] = headerSize{"session cookie", float64(len("Cookie: \r\n") + len(cookie))}
					mu.Unlock()
				}
				return nil
			}()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", alg, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out, firstErr
}
