package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// ConnLimit caps how many connections a server keeps open. Without a cap,
// idle keep-alive connections (each held for the server's IdleTimeout) are
// limited only by the process's file limit, which Go raises to the hard
// limit: twenty thousand of them exhausted it and starved real requests.
//
// At the cap, accepting a new connection first closes the connection that
// has been idle (between requests) the longest, so one client holding many
// idle connections cannot keep another out. When no connection is idle,
// the new connection waits for one to close or go idle (and later ones in
// the kernel's backlog); a connection that goes idle while one waits is
// closed at once. A connection that never sends a request is closed
// by the server's ReadHeaderTimeout, one that is slow to send its body by
// its ReadTimeout, so the wait is bounded by those.
//
// Use it as both the server's listener (Listener) and its ConnState hook.
type ConnLimit struct {
	max int

	mu      sync.Mutex
	cond    *sync.Cond
	open    int
	waiting int
	idle    idleList // longest idle first
	closed  bool

	idleClosed atomic.Int64
}

// NewConnLimit returns a ConnLimit of max connections; max must be at
// least 1.
func NewConnLimit(max int) *ConnLimit {
	if max < 1 {
		panic("server: NewConnLimit: max < 1")
	}
	l := &ConnLimit{max: max}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// Open returns how many connections are open.
func (l *ConnLimit) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// IdleClosed returns how many idle connections were closed to make room.
func (l *ConnLimit) IdleClosed() int64 { return l.idleClosed.Load() }

// Listener returns ln with the cap applied to what it accepts.
func (l *ConnLimit) Listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, l: l}
}

// ConnState is the http.Server's ConnState hook: it keeps track of which
// connections are idle.
func (l *ConnLimit) ConnState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	l.idle.remove(lc)
	if st != http.StateIdle || lc.closing || lc.released {
		l.mu.Unlock()
		return
	}
	if l.waiting > 0 {
		// Someone waits for a slot: this connection's is the one to give.
		lc.closing = true
		l.mu.Unlock()
		l.idleClosed.Add(1)
		lc.Close()
		return
	}
	l.idle.pushBack(lc)
	l.mu.Unlock()
}

// acquire takes a slot for a connection just accepted, closing the
// longest-idle connection if there is none free, or waiting for one. It
// reports false once the listener is closed.
func (l *ConnLimit) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.closed {
		if l.open < l.max {
			l.open++
			return true
		}
		if lc := l.idle.head; lc != nil {
			l.idle.remove(lc)
			lc.closing = true
			l.mu.Unlock()
			l.idleClosed.Add(1)
			lc.Close() // releases its slot
			l.mu.Lock()
			continue
		}
		l.waiting++
		l.cond.Wait()
		l.waiting--
	}
	return false
}

// release gives back the slot of a connection that closed.
func (l *ConnLimit) release(lc *limitedConn) {
	l.mu.Lock()
	l.idle.remove(lc)
	// net/http may still report the connection idle after it closed (a
	// Shutdown between the two): it must not rejoin the list then.
	lc.released = true
	l.open--
	l.cond.Signal()
	l.mu.Unlock()
}

type limitedListener struct {
	net.Listener
	l *ConnLimit
}

// Accept takes a slot only once a connection has arrived, so that
// "waiting" means a client waits, not merely that the server is ready for
// one: idle connections are closed for real demand only.
func (ll *limitedListener) Accept() (net.Conn, error) {
	c, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !ll.l.acquire() {
		c.Close()
		return nil, net.ErrClosed
	}
	return &limitedConn{Conn: c, l: ll.l}, nil
}

func (ll *limitedListener) Close() error {
	ll.l.mu.Lock()
	ll.l.closed = true
	ll.l.cond.Broadcast()
	ll.l.mu.Unlock()
	return ll.Listener.Close()
}

// limitedConn is an accepted connection; its fields other than Conn are
// guarded by the ConnLimit's mutex.
type limitedConn struct {
	net.Conn
	l          *ConnLimit
	idle       bool         // in l.idle
	prev, next *limitedConn // in l.idle
	closing    bool         // the limiter is closing it
	released   bool         // closed, its slot given back
	once       sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// idleList is the idle connections, longest idle first: a list through
// the connections themselves, so that a request, which takes a connection
// out of it and puts it back, allocates nothing. Guarded by the
// ConnLimit's mutex.
type idleList struct{ head, tail *limitedConn }

func (q *idleList) pushBack(c *limitedConn) {
	c.idle, c.prev, c.next = true, q.tail, nil
	if q.tail != nil {
		q.tail.next = c
	} else {
		q.head = c
	}
	q.tail = c
}

// remove takes c out of the list if it is in it.
func (q *idleList) remove(c *limitedConn) {
	if !c.idle {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		q.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		q.tail = c.prev
	}
	c.idle, c.prev, c.next = false, nil, nil
}
