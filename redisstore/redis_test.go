package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/redisstore"
)

// testURL is the Redis the tests use, in a database of their own that they
// flush.
func testURL() string {
	if u := os.Getenv("SESAME_TEST_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/9"
}

// unavailable skips the test outside CI, and fails it inside.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// open opens a store on url and empties its database (every primary's, on
// a Cluster) now and when the test ends.
func open(t testing.TB, url string) *redisstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redisstore.Open(ctx, url)
	if errors.Is(err, sesame.ErrUnavailable) {
		unavailable(t, "no Redis at %s (set SESAME_TEST_REDIS): %v", url, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	flush(t, st)
	t.Cleanup(func() {
		flush(t, st)
		st.Close()
	})
	return st
}

func flush(t testing.TB, st *redisstore.Store) {
	t.Helper()
	c := st.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for addr, n := range c.Nodes() {
		if err := n.Do(ctx, n.B().Flushdb().Build()).Error(); err != nil {
			t.Fatalf("FLUSHDB on %s: %v", addr, err)
		}
	}
}

// redisServer is a redis-server process this test started.
type redisServer struct {
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// needRedisServer skips the test (fails it in CI) if redis-server and
// redis-cli are not installed.
func needRedisServer(t testing.TB) {
	t.Helper()
	for _, name := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(name); err != nil {
			unavailable(t, "%s is not installed: %v", name, err)
		}
	}
}

// freePort returns a loopback port that is free, and whose Cluster bus port
// (port+10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(30000)
		ok := true
		for _, q := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// startRedis starts redis-server on port, without persistence, with extra
// arguments, and stops it when the test ends.
func startRedis(t testing.TB, port int, dir string, extra ...string) *redisServer {
	t.Helper()
	s := &redisServer{port: port, dir: dir, args: append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
	}, extra...)}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			t.Fatalf("redis-server on %s did not start: %v", s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// cli runs redis-cli with args and returns its output.
func cli(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startCluster starts a Redis Cluster of three primaries on loopback ports
// and returns its connection string.
func startCluster(t testing.TB) string {
	t.Helper()
	needRedisServer(t)
	dir := t.TempDir()
	var nodes []*redisServer
	var addrs []string
	for range 3 {
		p := freePort(t)
		nodes = append(nodes, startRedis(t, p, dir,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", p)),
			"--cluster-node-timeout", "2000"))
		addrs = append(addrs, nodes[len(nodes)-1].addr())
	}
	cli(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			info := cli(t, "-p", strconv.Itoa(n.port), "cluster", "info")
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster did not become ok:\n%s", info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return "redis://" + strings.Join(addrs, ",") + "/?cluster=true"
}

// usedMemory returns INFO memory's used_memory summed over every primary.
func usedMemory(t testing.TB, st *redisstore.Store) int64 {
	t.Helper()
	c := st.Client()
	var total int64
	for addr, n := range c.Nodes() {
		info, err := n.Do(context.Background(), n.B().Info().Section("memory").Build()).ToString()
		if err != nil {
			t.Fatalf("INFO memory on %s: %v", addr, err)
		}
		sc := bufio.NewScanner(strings.NewReader(info))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("used_memory %q", v)
				}
				total += n
			}
		}
	}
	return total
}
