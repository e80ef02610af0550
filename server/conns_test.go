package server_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sesameauth/sesame/server"
)

// TestConnLimitWaitsWhenNoneIdle: at the cap with every connection busy,
// a new connection is not served until one is free; the busy one, once it
// goes idle with another waiting, is closed to give up its slot.
func TestConnLimitWaitsWhenNoneIdle(t *testing.T) {
	lim := server.NewConnLimit(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- struct{}{}
				<-release
			}
		}),
		ConnState: lim.ConnState,
	}
	go srv.Serve(lim.Listener(ln))
	defer srv.Close()

	ask := func(path string) (net.Conn, <-chan error) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		done := make(chan error, 1)
		go func() {
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		return c, done
	}
	a, aDone := ask("/slow")
	defer a.Close()
	<-entered
	b, bDone := ask("/fast")
	defer b.Close()
	select {
	case err := <-bDone:
		t.Fatalf("second connection answered (%v) while the only slot was busy", err)
	case <-time.After(300 * time.Millisecond):
	}
	if n := lim.Open(); n != 1 {
		t.Errorf("Open() = %d, want 1", n)
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("second connection, once the first was idle: %v", err)
	}
	// The first connection was closed to make room.
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Errorf("the first connection is still open after giving up its slot")
	}
	if lim.IdleClosed() != 1 {
		t.Errorf("IdleClosed() = %d, want 1", lim.IdleClosed())
	}
}

// TestConnLimitClosesLongestIdle: at the cap, a new connection closes the
// connection idle the longest, and only that one; a connection that was
// idle and served another request since is younger than one that stayed
// idle.
func TestConnLimitClosesLongestIdle(t *testing.T) {
	lim := server.NewConnLimit(3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ConnState: lim.ConnState}
	go srv.Serve(lim.Listener(ln))
	defer srv.Close()

	type conn struct {
		net.Conn
		r *bufio.Reader
	}
	dial := func() conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return conn{c, bufio.NewReader(c)}
	}
	get := func(c conn) error {
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		res, err := http.ReadResponse(c.r, nil)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	a, b, c := dial(), dial(), dial()
	defer a.Close()
	defer b.Close()
	defer c.Close()
	for _, x := range []conn{a, b, c, a} { // idle order, oldest first: b, c, a
		if err := get(x); err != nil {
			t.Fatal(err)
		}
		// The server marks a connection idle after its answer is out:
		// give it the time to, so that the order is the one written.
		time.Sleep(100 * time.Millisecond)
	}
	d := dial()
	defer d.Close()
	if err := get(d); err != nil {
		t.Fatalf("new connection at the cap: %v", err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.r.ReadByte(); err == nil {
		t.Errorf("the longest-idle connection is still open")
	}
	for name, x := range map[string]conn{"a (idle since its second request)": a, "c": c} {
		if err := get(x); err != nil {
			t.Errorf("%s was closed instead of the longest-idle one: %v", name, err)
		}
	}
	if lim.IdleClosed() != 1 || lim.Open() != 3 {
		t.Errorf("IdleClosed() = %d, Open() = %d; want 1, 3", lim.IdleClosed(), lim.Open())
	}
}
