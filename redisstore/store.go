// Package redisstore keeps sessions, refresh-token families, the revocation
// log and login throttling counters in Redis or a Redis Cluster, through
// github.com/redis/rueidis. Users, signing keys and the audit log stay in a
// SQL store; this package does not keep them.
//
//	st, err := redisstore.Open(ctx, "redis://:secret@127.0.0.1:6379/0")
//	if err != nil { ... } // matches sesame.ErrUnavailable if Redis does not answer
//	defer st.Close()
//	auth := sesame.New(sesame.Config{Users: sql, Audit: sql, Sessions: st,
//		Limiter: st, ...})
//	grants, err := sesame.NewGrants(auth, sesame.GrantsConfig{Backend: st, ...})
//
// One [Store] implements [sesame.SessionBackend] ([sesame.SessionStore],
// [sesame.RefreshStore], [sesame.RevocationLog]), [sesame.Limiter], [sesame.Pinger] and
// [sesame.SessionCounter]. It does not implement [sesame.Sweeper]: every
// key carries a Redis TTL at the latest deadline of what it holds, and
// the writes that share a key forget what in it has expired (see Data
// model), so Redis forgets expired sessions by itself.
//
// # Connection strings
//
//	redis://[user:password@]host:port[/db]
//	rediss://...                                   TLS
//	redis://[user:password@]h1:p1,h2:p2,h3:p3/?cluster=true
//
// The first form talks to one server (a primary), in database db (default 0).
// The third is a Redis Cluster: the hosts are seeds, of which one answering
// is enough; the client learns the slot map from it and follows MOVED and
// ASK redirections. A Cluster has database 0 only. Optional query
// parameters: dial_timeout (a Go duration, default 2s) and timeout (how long
// one operation may wait for Redis, default 3s). They bound how long an
// operation waits on a dead, frozen or unreachable server: it fails with an
// error matching [sesame.ErrUnavailable], and the next operation dials
// again, so a restarted server is used again without reopening the store.
// cache_mb (default 32) is the size of the client-side cache (see below)
// of each connection, in MiB (a node keeps up to four connections to a
// server, fewer on machines with fewer CPUs, and one to each Cluster
// primary); cache_mb=0 turns the cache off, so that every lookup reads
// Redis.
//
// # Client-side cache
//
// Session lookups (the one read every cookie request makes) go through
// rueidis's server-assisted client-side cache: Redis remembers which keys
// each connection has read and pushes an invalidation message to it as soon
// as one changes, so a session in use costs no round trip, and a session
// ended on any node is refused on every other one as soon as that message
// arrives (well under a millisecond on a LAN; at the latest after a second,
// the longest a record stays cached). A node that ended a session itself
// refuses it at once, whatever its cache holds. A connection the client
// sees break takes its cache with it (a restarted or killed Redis closes
// it at once); one that fails silently (a network partition) is noticed
// within the operation timeout, and until then no record is served more
// than a second after it was read. Everything else reads Redis.
//
// # Data model
//
// Every key of one user's records starts with the hash tag {u:<userID>} (a
// user ID with a brace in it is hex-encoded there), so that they share a
// Cluster slot and a Lua script can change them together atomically:
//
//	{u:<uid>}:S          hash of the user's sessions: one field per session
//	                     (its ID, as 16 raw bytes when it is 32 hex digits),
//	                     whose value is the record; it lives until the latest
//	                     pointer deadline of its sessions
//	{u:<uid>}:f:<sid>    hash of the session's refresh tokens (one field per
//	                     token hash), deleted with the session; <sid> is the
//	                     ID as it is in :S (16 raw bytes when it is hex)
//	{u:<uid>}:rv         sorted set of revocations not yet in the log
//
// Besides, each in a slot of its own: the revocation log and the marks of
// what it holds ({revocations}:log, {revocations}:d:<at>:<sid>, see
// Revocations), the session counter ({sessions}:count, {sessions}:buckets),
// the epoch marker ({sesame}:epoch) and the limiter windows (lim:<key>).
//
// The user's hash is the per-user index: listing or ending a user's
// sessions reads that one key and never scans the keyspace. Callers name
// the user whenever they name a session (see sesame.SessionStore), so no
// index from session ID to user is kept.
//
// The lookup by secret hash goes through a pointer to the user and
// session, kept in one of 16,384 bucket hashes, sh:0 to sh:16383, chosen by
// the first 14 bits of the hash; each pointer carries its deadline, and
// writing to a bucket forgets the pointers in it whose deadline has
// passed. Refresh tokens have pointers of their own:
//
//	sh:<n>  field <16 bytes of the hash>  -> deadline, user and session ID
//	rt:<hex token hash>                   -> user and session ID
//
// A pointer is written before the record and deleted after it, so a crash
// in between leaves at most a pointer to nothing, which every lookup checks
// for (the record must exist, carry the same hash and be live) and ignores;
// its deadline then removes it.
//
// Small hashes are stored by Redis as listpacks, a few bytes of overhead
// per field, where a key of its own costs a hundred bytes or more before
// its name and value; keeping sessions as fields instead of keys is what
// makes a session with a 40-byte user agent cost about 300 bytes of Redis
// memory (INFO memory's used_memory: 303 at 100,000 sessions of 1000 users,
// 531 with one session per user; see BenchmarkSessionMemory and
// docs/BENCHMARKS.md). Each write to a user's hash or a pointer bucket
// looks at up to 16 of its fields, chosen at random, and forgets those that
// have expired (all of them for a user with 16 sessions or fewer), so
// expired entries settle at about one in fifteen of the live ones; a hash
// goes whole when it reaches its deadline.
//
// # Revocations
//
// The revocation log is one Redis Stream, {revocations}:log, so that it has
// one order across a Cluster. A revocation's Seq is derived from its stream
// ID (milliseconds*1e6 + sequence). The stream is trimmed to
// RevocationRetention, and every entry is also published on the channel
// sesame:revocations. Because a user's sessions and the log live in
// different slots, ending a session and logging it cannot be one
// transaction in a Cluster: the script that deletes sessions records them in
// the user's {u:<uid>}:rv set in the same step, then the store appends them
// to the stream (once each, however often that is tried within an hour),
// then clears the set. If the append fails, DeleteSession or
// DeleteUserSessions returns an error (matching sesame.ErrUnavailable when
// Redis could not be reached) although the sessions are gone: the failure
// is reported, never silent, and the store retries the append in the
// background (with backoff, until it succeeds, the store is closed, or the
// retention has passed); calling again, or ending any other session of the
// same user, appends what is still pending too.
//
// A refresh-token family keeps its current token and its newest
// sesame.RetiredRefreshTokensKept retired ones; an older retired token is
// forgotten with its pointer, so that a client refreshing for ever cannot
// grow the family, or the script that ends it, without bound (Redis runs
// one script at a time).
//
// # Counting
//
// CountSessions reads a counter of live sessions bucketed by the minute of
// their deadline ({sessions}:count and {sessions}:buckets), which every
// change of a session adjusts. The count includes sessions that expired in
// the current minute, and a counter update lost to a failure skews it only
// until the minute it concerns has passed.
//
// Times are kept in milliseconds. The store's clock (Now) decides whether a
// session or token is live; Redis's own clock drives the TTLs, which only
// forget what Now already considers expired as long as the two clocks agree
// within the precision that matters (they run on different machines).
// Limiter windows are timed by Redis's clock.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/sesameauth/sesame"
)

var (
	_ sesame.SessionStore   = (*Store)(nil)
	_ sesame.RefreshStore   = (*Store)(nil)
	_ sesame.SessionBackend = (*Store)(nil)
	_ sesame.RevocationLog  = (*Store)(nil)
	_ sesame.Limiter        = (*Store)(nil)
	_ sesame.Pinger         = (*Store)(nil)
	_ sesame.SessionCounter = (*Store)(nil)
)

// Default timeouts; the connection string may change them.
const (
	defaultDialTimeout = 2 * time.Second
	defaultTimeout     = 3 * time.Second
	defaultCacheMB     = 32
)

// Store is a Redis or Redis Cluster holding sessions, refresh tokens, the
// revocation log and limiter windows. Its methods are safe for concurrent
// use.
type Store struct {
	// Now is the clock that decides whether a session or refresh token has
	// expired. Open sets it to time.Now; tests replace it before using the
	// store.
	Now func() time.Time

	// RevocationRetention is how long a revocation stays in the log: at
	// least as long as an access token lives. Open sets it to
	// sesame.DefaultRevocationRetention, which it also means when not positive.
	RevocationRetention time.Duration

	client    rueidis.Client
	timeout   time.Duration // of one operation
	recent    recentWrites
	closed    chan struct{} // closed by Close
	retrying  sync.Map      // user ID -> struct{}: a flush of pending revocations is scheduled
	retries   atomic.Int64  // how many are
	shared    atomic.Pointer[sharedDeadline]
	closeOnce sync.Once
}

// config is what a connection string says.
type config struct {
	addrs       []string
	username    string
	password    string
	db          int
	cluster     bool
	tls         bool
	host        string // for TLS server name verification
	dialTimeout time.Duration
	timeout     time.Duration
	cacheMB     int
}

// parseURL parses a connection string of the forms the package comment
// describes.
func parseURL(raw string) (config, error) {
	c := config{dialTimeout: defaultDialTimeout, timeout: defaultTimeout, cacheMB: defaultCacheMB}
	u, err := url.Parse(raw)
	if err != nil {
		return c, errors.New("malformed connection string") // url's error would repeat the password
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		c.tls = true
	default:
		return c, fmt.Errorf("scheme %q, want redis or rediss", u.Scheme)
	}
	if u.Opaque != "" {
		return c, errors.New("want redis://host:port")
	}
	if u.User != nil {
		c.username = u.User.Username()
		c.password, _ = u.User.Password()
	}
	if u.Host == "" {
		return c, errors.New("no host")
	}
	for _, hp := range strings.Split(u.Host, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			if !strings.Contains(err.Error(), "missing port") {
				return c, fmt.Errorf("address %q: %v", hp, err)
			}
			host, port = strings.Trim(hp, "[]"), "6379"
		}
		if host == "" {
			return c, fmt.Errorf("address %q: no host", hp)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return c, fmt.Errorf("address %q: bad port", hp)
		}
		if c.host == "" {
			c.host = host
		}
		c.addrs = append(c.addrs, net.JoinHostPort(host, port))
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "cluster", "dial_timeout", "timeout", "cache_mb":
		default:
			return c, fmt.Errorf("unknown parameter %q", k)
		}
	}
	if v := q.Get("cluster"); v != "" {
		if c.cluster, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("cluster=%q: want true or false", v)
		}
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"dial_timeout", &c.dialTimeout}, {"timeout", &c.timeout}} {
		if v := q.Get(d.name); v != "" {
			if *d.to, err = time.ParseDuration(v); err != nil || *d.to <= 0 {
				return c, fmt.Errorf("%s=%q: want a positive duration such as 2s", d.name, v)
			}
		}
	}
	if v := q.Get("cache_mb"); v != "" {
		if c.cacheMB, err = strconv.Atoi(v); err != nil || c.cacheMB < 0 || c.cacheMB > 1<<14 {
			return c, fmt.Errorf("cache_mb=%q: want a size in MiB from 0 (no cache) to 16384", v)
		}
	}
	switch path := strings.Trim(u.Path, "/"); {
	case path == "":
	case c.cluster:
		return c, errors.New("a Redis Cluster has database 0 only: leave the path empty")
	default:
		if c.db, err = strconv.Atoi(path); err != nil || c.db < 0 {
			return c, fmt.Errorf("database %q: want a number", path)
		}
	}
	if len(c.addrs) > 1 && !c.cluster {
		return c, errors.New("several hosts are the seeds of a Redis Cluster: add ?cluster=true")
	}
	return c, nil
}

// Open connects to the Redis server or Cluster that url names (see the
// package comment for the forms) and checks that it answers. It fails
// within a few seconds, with an error matching sesame.ErrUnavailable, if it
// cannot reach it, and with another error if the connection string is
// malformed or a Cluster was asked for and the server is not one.
func Open(ctx context.Context, url string) (*Store, error) {
	c, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	opt := rueidis.ClientOption{
		InitAddress:       c.addrs,
		Username:          c.username,
		Password:          c.password,
		SelectDB:          c.db,
		ForceSingleClient: !c.cluster,
		ClientName:        "sesame",
		Dialer:            net.Dialer{Timeout: c.dialTimeout, KeepAlive: time.Second},
		ConnWriteTimeout:  c.timeout,
		// Server-assisted client-side caching of session lookups: see
		// "Client-side cache" above and Session.
		DisableCache:      c.cacheMB == 0,
		CacheSizeEachConn: max(c.cacheMB, 1) << 20,
		// Retry a read once, soon: the first command after a server
		// restart may meet the connection that died with it. More retries,
		// or retrying after a timeout, would only make an outage slower to
		// report.
		RetryDelay: func(attempts int, _ rueidis.Completed, err error) time.Duration {
			var ne net.Error
			if attempts > 1 || errors.As(err, &ne) && ne.Timeout() {
				return -1
			}
			return 20 * time.Millisecond
		},
	}
	if c.tls {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.host}
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open %s: %w: %w", strings.Join(c.addrs, ","), sesame.ErrUnavailable, err)
	}
	if c.cluster && client.Mode() != rueidis.ClientModeCluster {
		client.Close()
		return nil, fmt.Errorf("redisstore: open %s: cluster=true, but the server is not a Redis Cluster", strings.Join(c.addrs, ","))
	}
	s := &Store{Now: time.Now, RevocationRetention: sesame.DefaultRevocationRetention, client: client, timeout: c.timeout, closed: make(chan struct{})}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	if !c.cluster {
		// A Cluster node answers a plain client until the first key of
		// another node's slot; refuse it now rather than then.
		ctx, cancel := s.bound(ctx)
		defer cancel()
		info, err := client.Do(ctx, client.B().Info().Section("cluster").Build()).ToString()
		if err != nil {
			s.Close()
			return nil, translate(ctx, "open", err)
		}
		if strings.Contains(info, "cluster_enabled:1") {
			s.Close()
			return nil, fmt.Errorf("redisstore: open %s: the server is a Redis Cluster node: add ?cluster=true", c.addrs[0])
		}
	}
	return s, nil
}

// Close closes the connections. Operations in progress fail; Close may be
// called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.client.Close()
	})
	return nil
}

// Ping asks every primary to answer (for a Cluster, each one, in parallel)
// and returns an error matching sesame.ErrUnavailable if one does not.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	nodes := s.client.Nodes()
	errs := make(chan error, len(nodes))
	for addr, n := range nodes {
		go func() {
			err := n.Do(ctx, n.B().Ping().Build()).Error()
			if err != nil {
				err = fmt.Errorf("%s: %w", addr, err)
			}
			errs <- err
		}()
	}
	var all []error
	for range nodes {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("redisstore: ping: %w: %w", sesame.ErrUnavailable, err)
	}
	return nil
}

// bound returns ctx with the operation timeout as its deadline, unless it
// has an earlier one: a server that accepts connections but does not answer
// (stopped, overloaded, behind a broken network) fails the operation with
// ErrUnavailable instead of holding the caller.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) nowMS() int64 {
	if s.Now == nil {
		return time.Now().UnixMilli()
	}
	return s.Now().UnixMilli()
}

func (s *Store) retention() time.Duration {
	if s.RevocationRetention <= 0 {
		return sesame.DefaultRevocationRetention
	}
	return s.RevocationRetention
}

func toMS(t time.Time) int64 { return t.UnixMilli() }

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// translate wraps err with the operation. Errors that mean Redis cannot
// answer now (no connection, a timeout, a Cluster without a primary for the
// slot, a server still loading its data) also match sesame.ErrUnavailable.
// A context the caller canceled is reported as such.
func translate(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		msg := re.Error()
		for _, p := range []string{"CLUSTERDOWN", "LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY", "READONLY", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("redisstore: %s: %w: %w", op, sesame.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, sesame.ErrUnavailable, err)
}
