package server

import (
	"net"
	"net/http"
	"testing"
)

// TestConnLimitClosedNeverIdle: net/http can report a connection idle
// after it has closed (Shutdown closes idle connections between the
// two); such a connection must not rejoin the idle list, where the next
// connection at the cap would count closing it as making room.
func TestConnLimitClosedNeverIdle(t *testing.T) {
	l := NewConnLimit(2)
	a, b := net.Pipe()
	defer b.Close()
	if !l.acquire() {
		t.Fatal("acquire")
	}
	lc := &limitedConn{Conn: a, l: l}
	l.ConnState(lc, http.StateIdle)
	if l.idle.head != lc {
		t.Fatal("an idle connection is not in the idle list")
	}
	lc.Close()
	if l.idle.head != nil || l.Open() != 0 {
		t.Fatalf("after Close: idle list %p, Open() = %d; want empty, 0", l.idle.head, l.Open())
	}
	l.ConnState(lc, http.StateIdle)
	if l.idle.head != nil {
		t.Errorf("a closed connection rejoined the idle list")
	}
}
