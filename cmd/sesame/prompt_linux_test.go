package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/sesameauth/sesame"
)

// echoOff waits until the terminal's echo is off, as term.ReadPassword
// sets it, and fails the test after 20 s.
func echoOff(t *testing.T, tty *os.File, stderr *e2eLog, prompt string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatalf("reading the terminal's settings: %v", err)
		}
		if tio.Lflag&unix.ECHO == 0 && strings.Contains(stderr.String(), prompt) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no prompt %q with echo off within 20s; stderr %q, echo on: %v", prompt, stderr.String(), tio.Lflag&unix.ECHO != 0)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPasswordPromptOnTerminal: on a terminal, user add --password-stdin
// prompts (twice), reads without echo, and stores the password typed.
func TestPasswordPromptOnTerminal(t *testing.T) {
	t.Parallel()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	var (
		echoed bytes.Buffer
		mu     sync.Mutex
	)
	go func() {
		b := make([]byte, 1024)
		for {
			n, err := ptmx.Read(b)
			mu.Lock()
			echoed.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	dir := t.TempDir()
	const pw = "typed at the terminal"
	add := func(email, first, second string) (string, error) {
		stderr := &e2eLog{}
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		go func() {
			done <- run(ctx, []string{"user", "add", "--email", email, "--password-stdin", "--data-dir", dir}, e2eNoEnv, tty, io.Discard, stderr)
		}()
		echoOff(t, tty, stderr, "Password: ")
		io.WriteString(ptmx, first+"\n")
		echoOff(t, tty, stderr, "Password again: ")
		io.WriteString(ptmx, second+"\n")
		return stderr.String(), <-done
	}

	if _, err := add("tty@x.test", pw, pw+" but different"); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("two different passwords: %v, want an error saying they differ", err)
	}
	if _, err := add("tty@x.test", pw, pw); err != nil {
		t.Fatalf("user add on a terminal: %v", err)
	}
	mu.Lock()
	seen := echoed.String()
	mu.Unlock()
	if strings.Contains(seen, "typed") {
		t.Errorf("the terminal echoed the password: %q", seen)
	}

	st, err := dataCommand(context.Background(), "check", []string{"--data-dir", dir}, e2eNoEnv, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := cliAuth(st).CheckPassword(context.Background(), "tty@x.test", pw, sesame.Client{}); err != nil {
		t.Errorf("signing in with the password typed at the terminal: %v", err)
	}
}
