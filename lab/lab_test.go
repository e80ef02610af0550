package lab

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
)

// TestDefenceTestsExist checks that every test the security row names as
// proof of a defence exists in this repository, under that name, in that
// package.
func TestDefenceTestsExist(t *testing.T) {
	for _, d := range defences {
		for _, ref := range d.tests {
			dir, name, ok := strings.Cut(ref, " ")
			if !ok {
				t.Fatalf("%q is not \"package TestName\"", ref)
			}
			if !testExists(t, filepath.Join("..", dir), name) {
				t.Errorf("the security row names %s as proof of %q for %s, but %s has no such test", name, d.defence, d.approach, dir)
			}
		}
	}
}

func testExists(t *testing.T, dir, name string) bool {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range af.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == name {
				return true
			}
		}
	}
	return false
}

// testRedis is the Redis database the tests may empty:
// SESAME_LAB_TEST_REDIS, by default database 11 of the local server (not
// the store tests' 9: the two packages' tests run at the same time).
// Outside CI an unreachable one skips.
func testRedis(t *testing.T) (string, rueidis.Client) {
	u := os.Getenv("SESAME_LAB_TEST_REDIS")
	if u == "" {
		u = "redis://127.0.0.1:6379/11"
	}
	opt, err := rueidis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err == nil {
		err = c.Do(t.Context(), c.B().Ping().Build()).Error()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis %s: %v", u, err)
		}
		t.Skipf("redis %s not reachable: %v", u, err)
	}
	t.Cleanup(c.Close)
	if err := c.Do(t.Context(), c.B().Flushdb().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	return u, c
}

// TestRedisClaim: the lab claims only an empty database (or one an
// earlier lab run left), refuses one that holds anyone else's keys and
// leaves them alone, and empties only what it claimed.
func TestRedisClaim(t *testing.T) {
	u, c := testRedis(t)
	ctx := t.Context()
	dbsize := func() int64 {
		n, err := c.Do(ctx, c.B().Dbsize().Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Someone else's key: refused, untouched.
	if err := c.Do(ctx, c.B().Set().Key("theirs").Value("1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := claimRedis(ctx, u, io.Discard); err == nil || !strings.Contains(err.Error(), "did not make") {
		t.Fatalf("claiming a database with another's key: %v, want a refusal", err)
	}
	if n := dbsize(); n != 1 {
		t.Fatalf("after the refused claim the database holds %d keys, want their 1", n)
	}
	c.Do(ctx, c.B().Del().Key("theirs").Build())

	// Empty: claimed, used, emptied at release.
	claim, err := claimRedis(ctx, u, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Do(ctx, c.B().Set().Key("made-by-the-lab").Value("1").Build())
	if err := claim.reset(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dbsize(); n != 1 {
		t.Errorf("after reset: %d keys, want the marker alone", n)
	}
	c.Do(ctx, c.B().Set().Key("made-by-the-lab").Value("1").Build())
	claim.release()
	if n := dbsize(); n != 0 {
		t.Errorf("after release: %d keys, want 0", n)
	}

	// A database whose marker went away (someone else took it over) is
	// not emptied.
	claim, err = claimRedis(ctx, u, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Do(ctx, c.B().Del().Key(redisMarker).Build())
	c.Do(ctx, c.B().Set().Key("theirs").Value("1").Build())
	if err := claim.reset(ctx); err == nil {
		t.Error("reset emptied a database without the lab's marker")
	}
	claim.release()
	if n := dbsize(); n != 1 {
		t.Errorf("release without the marker: %d keys, want their 1", n)
	}

	// An earlier run's leftovers (its marker and its keys) are reclaimed.
	c.Do(ctx, c.B().Del().Key("theirs").Build())
	c.Do(ctx, c.B().Set().Key(redisMarker).Value("sesame-lab 0123").Build())
	c.Do(ctx, c.B().Set().Key("left-by-a-killed-run").Value("1").Build())
	claim, err = claimRedis(ctx, u, io.Discard)
	if err != nil {
		t.Fatalf("reclaiming an earlier run's database: %v", err)
	}
	if n := dbsize(); n != 1 {
		t.Errorf("after reclaiming: %d keys, want the marker alone", n)
	}
	claim.release()
}

// TestPostgresDatabase: the lab creates a database of its own and drops
// that one alone.
func TestPostgresDatabase(t *testing.T) {
	admin := os.Getenv("SESAME_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("postgres not reachable: %v", err)
	}
	defer conn.Close(context.Background())
	count := func(like string) int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1", like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	db, drop, err := createBenchDB(ctx, admin, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	name := db[strings.LastIndex(db, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	if !strings.HasPrefix(name, "sesame_lab_") || count(name) != 1 {
		t.Fatalf("created %q: want one new sesame_lab_ database", name)
	}
	drop()
	if count(name) != 0 {
		t.Errorf("%s still exists after drop", name)
	}
}

func TestUnreachableStore(t *testing.T) {
	var undo stops
	defer undo.run()
	r := &labRun{stderr: io.Discard}
	err := r.openStores(t.Context(), "memory,redis://127.0.0.1:1/3", &undo)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "redis://127.0.0.1:1/3") {
		t.Errorf("unreachable Redis: %v, want an error naming it", err)
	}
	r = &labRun{stderr: io.Discard}
	err = r.openStores(t.Context(), "postgres://postgres@127.0.0.1:1/test?connect_timeout=2", &undo)
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("unreachable PostgreSQL: %v, want an error naming it", err)
	}
	r = &labRun{stderr: io.Discard}
	if err := r.openStores(t.Context(), "mongodb://x", &undo); err == nil {
		t.Error("an unknown store was accepted")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"--quick":                               "--quick",
		"memory,sqlite":                         "memory,sqlite",
		"postgres://u@h:5432/t?sslmode=disable": "'postgres://u@h:5432/t?sslmode=disable'",
		"it's":                                  `'it'\''s'`,
		"":                                      "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
