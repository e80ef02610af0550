package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/memstore"
	"github.com/sesameauth/sesame/pgstore"
	"github.com/sesameauth/sesame/redisstore"
	"github.com/sesameauth/sesame/sqlitestore"
)

// parseFlags parses args into fs, then fills every flag not given on the
// command line from the environment (SESAME_ + the name in upper case with
// "-" as "_"): a flag beats the environment. Errors name the flag or the
// variable.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "SESAME_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	return err
}

// storeFlags are the flags of every command that touches data.
type storeFlags struct {
	dataDir      string
	db           string
	sessionStore string
}

func (sf *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.dataDir, "data-dir", "./sesame-data", "where the embedded default keeps its SQLite database and key material")
	fs.StringVar(&sf.db, "db", "", "user/key/audit database: sqlite:PATH, postgres://... or memory (nothing kept) (default: sqlite in --data-dir)")
	fs.StringVar(&sf.sessionStore, "session-store", "", "session store: memory, sqlite:PATH, postgres://..., redis://[user:pass@]host:port[/db] or rediss://... (Cluster: redis://h1:p1,h2:p2/?cluster=true; Redis parameters dial_timeout, timeout, cache_mb, see docs/OPERATIONS.md) (default: the same as --db)")
}

// stores is what a command works on, opened from the store flags.
type stores struct {
	users sesame.UserStore
	// sessions keeps sessions, refresh families and the revocation log:
	// one store, whichever --session-store names.
	sessions sesame.SessionBackend
	audit    sesame.AuditLog
	limiter  sesame.Limiter
	keys     sesame.KeyStore
	pingers  []sesame.Pinger
	sweepers []sesame.Sweeper
	closers  []io.Closer

	// db and sessionStore say which store keeps what, and where, for the
	// start-up log: "sqlite /abs/path.db", "postgres postgres://u:***@h/db",
	// "redis redis://h:6379", "memory (lost at exit)".
	db, sessionStore string
}

func (s *stores) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	return errors.Join(errs...)
}

// open opens the stores the flags name, within a few seconds: an
// unreachable or unusable store is an error naming the flag.
func (sf *storeFlags) open(ctx context.Context) (_ *stores, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := &stores{}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	dbURL := sf.db
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(sf.dataDir, "sesame.db")
	}
	openedPG := map[string]*pgstore.Store{}
	openPG := func(flagName, url string) (*pgstore.Store, error) {
		if p, ok := openedPG[url]; ok {
			return p, nil
		}
		p, err := pgstore.Open(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("--%s: cannot use PostgreSQL at %s: %w", flagName, redact(url), err)
		}
		openedPG[url] = p
		st.closers = append(st.closers, closerFunc(func() error { p.Close(); return nil }))
		st.pingers = append(st.pingers, p)
		st.sweepers = append(st.sweepers, p)
		return p, nil
	}
	opened := map[string]*sqlitestore.Store{}
	described := map[string]string{}
	describeSQLite := func(path string) string {
		abs, _ := filepath.Abs(path)
		return described[abs]
	}
	openSQLite := func(flagName, path string) (*sqlitestore.Store, error) {
		if path == "" {
			return nil, usagef("--%s: sqlite: needs a path, as in sqlite:./sesame-data/sesame.db", flagName)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		if s, ok := opened[abs]; ok {
			return s, nil
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		s, err := sqlitestore.Open(ctx, abs)
		if err != nil {
			return nil, fmt.Errorf("--%s: cannot open SQLite database %s: %w", flagName, path, err)
		}
		opened[abs] = s
		described[abs] = "sqlite " + abs
		st.closers = append(st.closers, s)
		st.pingers = append(st.pingers, s)
		st.sweepers = append(st.sweepers, s)
		return s, nil
	}
	switch scheme, rest, _ := strings.Cut(dbURL, ":"); scheme {
	case "sqlite", "file":
		s, err := openSQLite("db", rest)
		if err != nil {
			return nil, err
		}
		st.users, st.audit, st.keys = s, s, s
		st.db = describeSQLite(rest)
	case "postgres", "postgresql":
		p, err := openPG("db", dbURL)
		if err != nil {
			return nil, err
		}
		st.users, st.audit, st.keys = p, p, p
		st.db = "postgres " + redact(dbURL)
	case "memory":
		// Nothing outlives the process: for "sesame demo" and trials.
		m := memstore.New()
		st.users, st.audit, st.keys = m, m, m
		st.pingers = append(st.pingers, m)
		st.db = "memory (nothing kept)"
	default:
		return nil, usagef("--db: want sqlite:PATH, postgres://... or memory, got %q", redact(dbURL))
	}
	ss := sf.sessionStore
	if ss == "" {
		ss = dbURL
	}
	switch scheme, rest, _ := strings.Cut(ss, ":"); scheme {
	case "memory":
		m := memstore.New()
		st.sessions = m
		st.sweepers = append(st.sweepers, m)
		st.sessionStore = "memory (lost at exit)"
	case "sqlite", "file":
		s, err := openSQLite("session-store", rest)
		if err != nil {
			return nil, err
		}
		st.sessions = s
		st.sessionStore = describeSQLite(rest)
	case "postgres", "postgresql":
		p, err := openPG("session-store", ss)
		if err != nil {
			return nil, err
		}
		st.sessions = p
		st.sessionStore = "postgres " + redact(ss)
	case "redis", "rediss":
		r, err := redisstore.Open(ctx, ss)
		if err != nil {
			return nil, fmt.Errorf("--session-store: cannot use Redis at %s: %w", redact(ss), err)
		}
		st.closers = append(st.closers, r)
		st.pingers = append(st.pingers, r)
		st.sessions = r
		st.sessionStore = "redis " + redact(ss)
		// Throttling counters live in Redis too, so every node counts
		// the same attempts.
		st.limiter = r
	default:
		return nil, usagef("--session-store: want memory, sqlite:PATH, postgres://... or redis://..., got %q", redact(ss))
	}
	// Otherwise in PostgreSQL, shared by the nodes on it; on SQLite or
	// memory, in this process.
	if l, ok := st.users.(*pgstore.Store); ok && st.limiter == nil {
		st.limiter = l
	}
	if st.limiter == nil {
		lim := memstore.New()
		st.limiter = lim
		st.sweepers = append(st.sweepers, lim)
	}
	return st, nil
}

// closerFunc adapts a Close without a result to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// redact hides the secrets of a connection string before it is printed:
// the password of the user part and the password, sslpassword and sslkey
// parameters. What does not parse as a URL prints as its scheme only.
func redact(s string) string {
	if !strings.Contains(s, "://") {
		return s // sqlite:PATH, memory
	}
	u, err := url.Parse(s)
	if err != nil {
		scheme, _, _ := strings.Cut(s, ":")
		return scheme + "://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword", "sslkey"} {
		if q.Has(k) {
			q.Set(k, "***")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
