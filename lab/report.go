package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The rows of the seed's comparison table, in its order, and what the
// textbook says in each.
var rows = []struct {
	id, title, textbook string
}{
	{"storage", "Storage",
		"Sessions keep state on the server (memory or a database) for every signed-in user and put “a heavy load onto the server”; tokens live on the client, so they “reduce server memory”, at the price of a bigger request."},
	{"statelessness", "Statelessness and the lookup claim",
		"Sessions are stateful: every request is a store lookup. Tokens are self-contained and “eliminate server-side session lookups”, so a token request is cheaper."},
	{"scalability", "Scalability",
		"Sessions need a shared store or sticky sessions to scale out; tokens scale horizontally for free, since any node can verify them."},
	{"expiration", "Expiration",
		"The server ends a session when it likes (idle and absolute timeouts); a token carries its own expiry, and it is valid until then."},
	{"revocation", "Revocation",
		"Ending a session is easy (delete it); revoking a token is “difficult”: it stays valid until it expires."},
	{"security", "Security",
		"Cookies are exposed to CSRF; tokens kept in JavaScript are exposed to XSS."},
	{"use-case", "Use case",
		"Sessions for classic server-rendered web apps; tokens for APIs, single-page and mobile apps, and microservices."},
}

// steps are the measurements of a report, each filling one row. The use
// case is not measured: it is read off the others.
var steps = []struct {
	row string
	run func(ctx context.Context, r *labRun) error
}{
	{"storage", storageStep},
	{"statelessness", lookupStep},
	{"scalability", scaleStep},
	{"expiration", expiryStep},
	{"revocation", revokeStep},
	{"security", securityStep},
}

// Figure is one number of the report. Row is the table row it belongs to;
// Baseline names what it was measured against, and BaselineValue is that
// baseline's value in the same run (in Unit), where there is one.
type Figure struct {
	Row           string   `json:"row"`
	Name          string   `json:"name"`
	Unit          string   `json:"unit"`
	Value         float64  `json:"value"`
	Baseline      string   `json:"baseline"`
	BaselineValue *float64 `json:"baseline_value,omitempty"`
	Command       string   `json:"command"`
}

// Row is one row of the report's table.
type Row struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Textbook string   `json:"textbook"`
	Measured string   `json:"measured"`
	Verdict  string   `json:"verdict"`
	Notes    []string `json:"notes,omitempty"`
	Command  string   `json:"command"`
	plots    []chart
	tables   []table
}

// table is a small table shown in a row's section.
type table struct {
	caption string
	head    []string
	rows    [][]string
}

// Results is results.json.
type Results struct {
	Machine  Machine   `json:"machine"`
	Command  string    `json:"command"`
	Quick    bool      `json:"quick"`
	Stores   []string  `json:"stores"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Figures  []Figure  `json:"figures"`
	Rows     []*Row    `json:"rows"`
	Warnings []string  `json:"warnings,omitempty"`
}

// labRun is one run of the report: its settings, the stores it was given
// (and made its own), and what it has found so far.
type labRun struct {
	quick    bool
	stores   []string // memory, sqlite, postgres, redis: the kinds asked for, in order
	pgAdmin  string   // the PostgreSQL URL given
	pgDB     string   // the database the lab created on it
	redis    *redisClaim
	bin      string
	childLog io.Writer
	stderr   io.Writer
	command  string // how the whole report was asked for
	storeArg string // --stores as given, for the rerun commands
	res      *Results
	rowByID  map[string]*Row
	stepNo   int
	stepN    int
	// masterKey is every server's SESAME_MASTER_KEY: servers of one run
	// share the lab's PostgreSQL database, and with it the sealed keys.
	masterKey string
}

// progress prints one line of what is being measured.
func (r *labRun) progress(format string, args ...any) {
	fmt.Fprintf(r.stderr, "lab [%d/%d] %s\n", r.stepNo, r.stepN, fmt.Sprintf(format, args...))
}

// rerun is the command that measures row again, alone.
func (r *labRun) rerun(row string) string {
	cmd := "sesame lab --only " + row
	if r.quick {
		cmd += " --quick"
	}
	if r.storeArg != "" {
		cmd += " --stores " + shellQuote(redactList(r.storeArg))
	}
	return cmd
}

// add records a figure of row.
func (r *labRun) add(row, name, unit string, value float64, baseline string, baselineValue ...float64) {
	f := Figure{Row: row, Name: name, Unit: unit, Value: value, Baseline: baseline, Command: r.rerun(row)}
	if len(baselineValue) > 0 {
		v := baselineValue[0]
		f.BaselineValue = &v
	}
	r.res.Figures = append(r.res.Figures, f)
}

// row returns the row with that id.
func (r *labRun) row(id string) *Row { return r.rowByID[id] }

// has reports whether the store kind was asked for.
func (r *labRun) has(kind string) bool { return slices.Contains(r.stores, kind) }

// report is "sesame lab" without a measurement named: every row, into
// DIR/report.html and DIR/results.json.
func report(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags of the report:\n")
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "shorter runs and fewer sessions: within two minutes on two cores")
	out := fs.String("out", "sesame-lab", "directory for report.html and results.json")
	storeList := fs.String("stores", "memory,sqlite", "session stores compared, comma-separated: memory, sqlite, postgres://... (a database is created on it and dropped after), redis://... (an empty database is claimed and emptied after)")
	only := fs.String("only", "", "measure only these rows, comma-separated: "+strings.Join(stepIDs(), ", "))
	bin := fs.String("bin", "", "sesame binary to measure (default: this executable)")
	childStderr := fs.Bool("child-stderr", false, "copy the servers' stderr to ours")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lab: unexpected argument %q (the measurements are %s)", fs.Arg(0), "session-load, token-load, refresh, cache-hits, login, revoke-latency")
	}
	want := map[string]bool{}
	for _, id := range splitComma(*only) {
		if !slices.Contains(stepIDs(), id) {
			return fmt.Errorf("lab: --only: unknown row %q (want %s)", id, strings.Join(stepIDs(), ", "))
		}
		want[id] = true
	}
	key := make([]byte, 32)
	rand.Read(key)
	r := &labRun{quick: *quick, bin: *bin, stderr: stderr, storeArg: *storeList, rowByID: map[string]*Row{},
		masterKey: base64.StdEncoding.EncodeToString(key)}
	if *childStderr {
		r.childLog = stderr
	}
	quoted := redactArgs(args)
	for i, a := range quoted {
		quoted[i] = shellQuote(a)
	}
	r.command = "sesame lab " + strings.Join(quoted, " ")
	started := time.Now()
	r.res = &Results{Machine: machine(), Command: strings.TrimSpace(r.command), Quick: *quick, Started: started.UTC()}
	for _, row := range rows {
		rw := &Row{ID: row.id, Title: row.title, Textbook: row.textbook, Command: r.rerun(row.id)}
		r.rowByID[row.id] = rw
		r.res.Rows = append(r.res.Rows, rw)
	}

	var undo stops
	defer undo.run()
	if err := r.openStores(ctx, *storeList, &undo); err != nil {
		return err
	}
	r.res.Stores = r.stores
	if r.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab: finding the sesame executable: %w", err)
		}
		r.bin = exe
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("lab: --out: %w", err)
	}

	for _, s := range steps {
		if len(want) == 0 || want[s.row] {
			r.stepN++
		}
	}
	for _, s := range steps {
		if len(want) > 0 && !want[s.row] {
			r.row(s.row).Measured = "Not measured in this run (--only)."
			continue
		}
		r.stepNo++
		t0 := time.Now()
		r.progress("%s: starting", s.row)
		if err := s.run(ctx, r); err != nil {
			return fmt.Errorf("lab: %s: %w", s.row, err)
		}
		r.progress("%s: done in %s", s.row, time.Since(t0).Round(100*time.Millisecond))
		if r.redis != nil {
			if err := r.redis.reset(ctx); err != nil {
				return err
			}
		}
	}
	useCase(r)
	r.res.Seconds = time.Since(started).Seconds()

	js, err := json.MarshalIndent(r.res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: writing results.json: %w", err)
	}
	page, err := render(r.res)
	if err != nil {
		return fmt.Errorf("lab: rendering the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(*out, "report.html"), page, 0o644); err != nil {
		return fmt.Errorf("lab: writing report.html: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s (%d figures in %s)\n", filepath.Join(*out, "report.html"), filepath.Join(*out, "results.json"),
		len(r.res.Figures), time.Since(started).Round(time.Second))
	return nil
}

func stepIDs() []string {
	var ids []string
	for _, s := range steps {
		ids = append(ids, s.row)
	}
	return ids
}

// openStores checks every store asked for, creates the lab's PostgreSQL
// database and claims its Redis database; undo gets what drops and empties
// them again. An unreachable store is an error that names it.
func (r *labRun) openStores(ctx context.Context, list string, undo *stops) error {
	for _, s := range splitComma(list) {
		var kind string
		switch {
		case s == "memory" || s == "sqlite":
			kind = s
		case strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://"):
			if r.pgAdmin != "" {
				return errors.New("lab: --stores: more than one PostgreSQL")
			}
			kind, r.pgAdmin = "postgres", s
		case strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://"):
			if r.redis != nil {
				return errors.New("lab: --stores: more than one Redis")
			}
			kind = "redis"
			c, err := claimRedis(ctx, s, r.stderr)
			if err != nil {
				return fmt.Errorf("lab: --stores: %w", err)
			}
			r.redis = c
			undo.add(c.release)
		default:
			return fmt.Errorf("lab: --stores: want memory, sqlite, postgres://... or redis://..., got %q", redact(s))
		}
		if r.has(kind) {
			return fmt.Errorf("lab: --stores: %s named twice", kind)
		}
		r.stores = append(r.stores, kind)
	}
	if len(r.stores) == 0 {
		return errors.New("lab: --stores: no store named")
	}
	if r.pgAdmin != "" {
		db, drop, err := createBenchDB(ctx, r.pgAdmin, r.stderr)
		if err != nil {
			return fmt.Errorf("lab: --stores: PostgreSQL %s: %w", redact(r.pgAdmin), err)
		}
		r.pgDB = db
		undo.add(drop)
	}
	return nil
}

// server returns how to start sesame serve on the store kind: users, keys
// and audit in the lab's PostgreSQL database when there is one for
// postgres, else in SQLite in the server's data directory.
func (r *labRun) server(kind string, flags ...string) sesameServer {
	s := sesameServer{bin: r.bin, store: kind, childLog: r.childLog, flags: append(slices.Clone(unthrottled), flags...),
		env: []string{"SESAME_MASTER_KEY=" + r.masterKey}}
	switch kind {
	case "postgres":
		s.pg = r.pgDB
	case "redis":
		s.redis = r.redis.url
	}
	return s
}

func splitComma(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// redactArgs hides passwords in URLs of the command line.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
			out[i] = k + "=" + redactList(v)
		} else {
			out[i] = redactList(a)
		}
	}
	return out
}

// shellQuote quotes s for a POSIX shell if it holds anything but the
// characters of flags, paths and plain URLs, so that a rerun command can
// be pasted as it is (a URL's ? or & would otherwise be read by the shell).
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,:/._@=+-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func redactList(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if strings.Contains(p, "://") {
			parts[i] = redact(p)
		}
	}
	return strings.Join(parts, ",")
}
