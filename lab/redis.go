package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// defaultRedis is the Redis the lab's single commands use unless told
// otherwise: db 12 of the local server. Like any other, it is claimed
// (claimRedis) and must be empty or left by an earlier lab run.
const defaultRedis = "redis://127.0.0.1:6379/12"

// redisMarker is the key by which the lab marks a Redis database as its
// own for the length of a run. Sesame's Redis store has no key prefix, so
// the lab claims a whole database: one that holds nothing, or nothing but
// an earlier run's leftovers (this key is then present).
const redisMarker = "sesame-lab:claimed-by"

// redisClaim is a Redis database the lab made its own: it held no key of
// anyone else when claimed, and the marker holds this run's token.
type redisClaim struct {
	url    string // the claimed database's URL, for sesame serve --session-store
	db     int
	token  string
	client rueidis.Client
	stderr io.Writer
}

// claimRedis claims a database of the Redis at raw. A URL that names a
// database (redis://h:p/7) claims that one, and fails if it holds keys
// that an earlier lab run did not leave; a URL without one takes the
// highest-numbered empty database. The lab never empties a database it
// has not claimed: reset and release check the marker first.
func claimRedis(ctx context.Context, raw string, stderr io.Writer) (*redisClaim, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, fmt.Errorf("redis: %q is not a redis:// URL", redact(raw))
	}
	path := strings.Trim(u.Path, "/")
	var candidates []int
	if path != "" {
		n, err := strconv.Atoi(path)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("redis %s: the path must be a database number", redact(raw))
		}
		candidates = []int{n}
	}
	b := make([]byte, 12)
	rand.Read(b)
	c := &redisClaim{token: "sesame-lab " + hex.EncodeToString(b), stderr: stderr}
	connect := func(db int) (rueidis.Client, error) {
		v := *u
		v.Path = "/" + strconv.Itoa(db)
		opt, err := rueidis.ParseURL(v.String())
		if err != nil {
			return nil, err
		}
		opt.DisableCache = true
		cl, err := rueidis.NewClient(opt)
		if err != nil {
			return nil, err
		}
		if err := cl.Do(ctx, cl.B().Ping().Build()).Error(); err != nil {
			cl.Close()
			return nil, err
		}
		c.url = v.String()
		return cl, nil
	}
	if candidates == nil {
		cl, err := connect(0)
		if err != nil {
			return nil, fmt.Errorf("redis %s: cannot reach it: %w", redact(raw), err)
		}
		dbs := 16
		if m, err := cl.Do(ctx, cl.B().ConfigGet().Parameter("databases").Build()).AsStrMap(); err == nil {
			if n, err := strconv.Atoi(m["databases"]); err == nil && n > 0 {
				dbs = n
			}
		}
		cl.Close()
		for db := dbs - 1; db >= 1; db-- {
			candidates = append(candidates, db)
		}
	}
	var last error
	for _, db := range candidates {
		cl, err := connect(db)
		if err != nil {
			return nil, fmt.Errorf("redis %s: cannot reach it: %w", redact(raw), err)
		}
		c.client, c.db = cl, db
		if last = c.claim(ctx); last == nil {
			fmt.Fprintf(stderr, "lab: claimed Redis database %d (empty); it is emptied again at the end\n", db)
			return c, nil
		}
		cl.Close()
	}
	if len(candidates) == 1 {
		return nil, fmt.Errorf("redis %s: %w; name an empty database, or none to let the lab find one", redact(raw), last)
	}
	return nil, fmt.Errorf("redis %s: no empty database to claim", redact(raw))
}

// claim sets the marker if the database holds nothing but an old marker.
func (c *redisClaim) claim(ctx context.Context) error {
	cl := c.client
	old, err := cl.Do(ctx, cl.B().Get().Key(redisMarker).Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return err
	}
	n, err := cl.Do(ctx, cl.B().Dbsize().Build()).AsInt64()
	if err != nil {
		return err
	}
	leftover := strings.HasPrefix(old, "sesame-lab ")
	if n > 0 && !leftover {
		return fmt.Errorf("database %d holds %d keys that sesame lab did not make", c.db, n)
	}
	if err := cl.Do(ctx, cl.B().Set().Key(redisMarker).Value(c.token).Build()).Error(); err != nil {
		return err
	}
	if leftover {
		return c.reset(ctx)
	}
	// Someone else may have written between DBSIZE and SET: then the
	// database is not ours after all.
	if n, err := cl.Do(ctx, cl.B().Dbsize().Build()).AsInt64(); err != nil || n != 1 {
		cl.Do(ctx, cl.B().Del().Key(redisMarker).Build())
		return fmt.Errorf("database %d was written to while being claimed", c.db)
	}
	return nil
}

// reset empties the claimed database between measurements, if the marker
// still says it is this run's, and marks it again.
func (c *redisClaim) reset(ctx context.Context) error {
	cl := c.client
	got, err := cl.Do(ctx, cl.B().Get().Key(redisMarker).Build()).ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("redis database %d: %w", c.db, err)
	}
	if got != c.token && !strings.HasPrefix(got, "sesame-lab ") {
		return fmt.Errorf("redis database %d: the lab's marker is gone; not emptying a database that may no longer be its own", c.db)
	}
	if err := cl.Do(ctx, cl.B().Flushdb().Build()).Error(); err != nil {
		return fmt.Errorf("redis database %d: FLUSHDB: %w", c.db, err)
	}
	return cl.Do(ctx, cl.B().Set().Key(redisMarker).Value(c.token).Build()).Error()
}

// release empties the claimed database (keeping nothing, not even the
// marker) and closes the connection.
func (c *redisClaim) release() {
	ctx := context.Background()
	cl := c.client
	defer cl.Close()
	got, err := cl.Do(ctx, cl.B().Get().Key(redisMarker).Build()).ToString()
	if err != nil || got != c.token {
		fmt.Fprintf(c.stderr, "lab: Redis database %d no longer carries this run's marker; left as it is\n", c.db)
		return
	}
	if err := cl.Do(ctx, cl.B().Flushdb().Build()).Error(); err != nil {
		fmt.Fprintf(c.stderr, "lab: emptying Redis database %d: %v\n", c.db, err)
		return
	}
	fmt.Fprintf(c.stderr, "lab: emptied Redis database %d again\n", c.db)
}

// memoryUsage returns the bytes Redis reports for every key of the
// claimed database but the marker (MEMORY USAGE, all samples), and the
// number of keys.
func (c *redisClaim) memoryUsage(ctx context.Context) (bytes int64, keys int, err error) {
	cl := c.client
	var cursor uint64
	for {
		e, err := cl.Do(ctx, cl.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return 0, 0, err
		}
		for _, k := range e.Elements {
			if k == redisMarker {
				continue
			}
			n, err := cl.Do(ctx, cl.B().MemoryUsage().Key(k).Samples(0).Build()).AsInt64()
			if err != nil && !rueidis.IsRedisNil(err) {
				return 0, 0, err
			}
			bytes += n
			keys++
		}
		if cursor = e.Cursor; cursor == 0 {
			return bytes, keys, nil
		}
	}
}

// redact hides a password in a connection URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		scheme, _, _ := strings.Cut(s, ":")
		return scheme + "://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}
