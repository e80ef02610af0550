package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// process is a server this lab started as a child process, listening on
// loopback.
type process struct {
	base string // http://127.0.0.1:PORT
	pid  int
}

// startProcess starts argv with env added to ours (less any GOGC,
// GOMEMLIMIT, GODEBUG and GOMAXPROCS of our own, so that every server runs
// with the runtime's defaults unless env says otherwise), and waits until
// it logs ready: the slog text line with msg="<ready>", whose addr= field
// is where it listens. Its stderr goes to childLog, or nowhere. stop
// interrupts it and waits for it to exit.
func startProcess(ctx context.Context, argv, env []string, ready string, childLog io.Writer) (p process, stop func(), err error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return process{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return process{}, nil, err
	}
	// The stderr reader ends when the child has exited (the pipe closes);
	// exited is closed after Wait, which waits for that reader.
	exited := make(chan struct{})
	var waitErr error
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	}
	addr := make(chan string, 1)
	var mu sync.Mutex
	var tail []string // the child's last lines, for an error
	read := make(chan struct{})
	go func() {
		defer close(read)
		// Read to the end, so the child never blocks on a full pipe.
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			if childLog != nil {
				fmt.Fprintln(childLog, line)
			}
			mu.Lock()
			if tail = append(tail, line); len(tail) > 3 {
				tail = tail[1:]
			}
			mu.Unlock()
			if a, ok := listeningAddr(line, ready); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
	}()
	go func() {
		<-read
		waitErr = cmd.Wait()
		close(exited)
	}()
	select {
	case a := <-addr:
		return process{base: "http://" + a, pid: cmd.Process.Pid}, stop, nil
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		return process{}, nil, fmt.Errorf("%s %s exited before it was ready (%v): %s", argv[0], argv[1], waitErr, strings.Join(tail, " | "))
	case <-time.After(60 * time.Second):
		// Generous: a server starting on a loaded machine (and migrating a
		// fresh PostgreSQL database) can take a while.
		err = fmt.Errorf("%s did not log %q within 60s", argv[0], ready)
	case <-ctx.Done():
		err = ctx.Err()
	}
	stop()
	return process{}, nil, err
}

// listeningAddr returns the addr= field of a slog text line whose message
// is msg.
func listeningAddr(line, msg string) (string, bool) {
	if !strings.Contains(line, ` msg="`+msg+`" `) && !strings.Contains(line, " msg="+msg+" ") {
		return "", false
	}
	for _, f := range strings.Fields(line) {
		if a, ok := strings.CutPrefix(f, "addr="); ok && a != "" {
			return a, true
		}
	}
	return "", false
}

// sesameBinary returns bin if it is set, else this very executable: the
// lab is "sesame lab", so the server it measures is the binary it runs in.
// cleanup is for the callers' symmetry; there is nothing to remove.
func sesameBinary(_ context.Context, bin string, _ io.Writer) (path string, cleanup func(), err error) {
	if bin != "" {
		return bin, func() {}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("finding the sesame executable: %w", err)
	}
	return exe, func() {}, nil
}

// sesameServer is how the lab starts the real binary.
type sesameServer struct {
	bin      string
	store    string    // memory, sqlite (serve's default: sessions in the --db file) or redis
	redis    string    // the Redis URL of store redis
	pg       string    // the PostgreSQL URL of store postgres (users, keys and sessions)
	flags    []string  // more flags of sesame serve
	env      []string  // more environment, e.g. GOMEMLIMIT=117MiB
	childLog io.Writer // where its stderr goes, or nil
}

// start runs "sesame serve --addr 127.0.0.1:0 --data-dir TMP" with the
// session store and the flags, in a fresh data directory that stop
// removes.
func (s sesameServer) start(ctx context.Context) (p process, stop func(), err error) {
	dir, err := os.MkdirTemp("", "sesame-lab-data-")
	if err != nil {
		return process{}, nil, err
	}
	argv := []string{s.bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir}
	switch s.store {
	case "memory":
		argv = append(argv, "--session-store", "memory")
	case "sqlite":
	case "postgres":
		argv = append(argv, "--db", s.pg)
	case "redis":
		// Users, keys and audit stay in serve's default SQLite file in
		// the data directory unless s.flags name a --db.
		argv = append(argv, "--session-store", s.redis)
		if s.pg != "" {
			argv = append(argv, "--db", s.pg)
		}
	default:
		os.RemoveAll(dir)
		return process{}, nil, fmt.Errorf("-store: want memory, sqlite, postgres or redis, got %q", s.store)
	}
	p, stopProc, err := startProcess(ctx, append(argv, s.flags...), s.env, "sesame listening", s.childLog)
	if err != nil {
		os.RemoveAll(dir)
		return process{}, nil, err
	}
	return p, func() { stopProc(); os.RemoveAll(dir) }, nil
}

// unthrottled are serve's flags that raise the login throttle out of the
// way: every login the lab makes is for one account from one address.
var unthrottled = []string{"--login-account-limit", "1000000", "--login-address-limit", "1000000"}

// procStatusMiB reads a size field such as VmRSS or VmHWM of
// /proc/PID/status, in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return 0, fmt.Errorf("%s in /proc/%d/status: %w", field, pid, err)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// procCPU returns the user and system CPU time of process pid from
// /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	d, err := parseStatCPU(data)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return d, nil
}

// parseStatCPU returns utime + stime of a /proc/PID/stat line, counting in
// the kernel's USER_HZ ticks of 10 ms (its value on every Linux this runs
// on; getconf CLK_TCK says 100).
func parseStatCPU(data []byte) (time.Duration, error) {
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th and stime the 13th.
	var f []string
	if i := bytes.LastIndexByte(data, ')'); i >= 0 {
		f = strings.Fields(string(data[i+1:]))
	}
	if len(f) < 13 {
		return 0, errors.New("unexpected format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
