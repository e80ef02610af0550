package lab

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// cluster is n sesame serve nodes on one PostgreSQL database (and one
// Redis session store, if the lab has one), with one master key and one
// issuer (every server of a run has the same master key), as a deployment
// behind a load balancer runs them.
func (r *labRun) cluster(ctx context.Context, undo *stops, n int, flags ...string) ([]process, error) {
	kind := "postgres"
	if r.redis != nil {
		kind = "redis"
	}
	srv := r.server(kind, append([]string{"--issuer", "http://sesame-lab.test", "--hash-concurrency", "2"}, flags...)...)
	srv.pg = r.pgDB
	var nodes []process
	for range n {
		p, stop, err := srv.start(ctx) // one after the other: the first migrates the schema
		if err != nil {
			return nil, err
		}
		undo.add(stop)
		nodes = append(nodes, p)
	}
	return nodes, nil
}

// spread is a closed-loop GET of path on every node in turn (worker w
// talks to node w mod len(nodes)), with header: what a round-robin load
// balancer in front of the nodes would send them.
func spread(ctx context.Context, nodes []process, path, header, value string, conns int, d time.Duration) (sample, error) {
	var before time.Duration
	for _, p := range nodes {
		c, err := procCPU(p.pid)
		if err != nil {
			return sample{}, err
		}
		before += c
	}
	res := loadSpec{
		conns: conns, d: d, max: 2_000_000, want: http.StatusOK,
		newReq: func(w int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, nodes[w%len(nodes)].base+path, nil)
			if err == nil && header != "" {
				req.Header.Set(header, value)
			}
			return req, err
		},
	}.run(ctx)
	var after time.Duration
	for _, p := range nodes {
		c, err := procCPU(p.pid)
		if err != nil {
			return sample{}, err
		}
		after += c
	}
	s := fromLoad(res)
	if s.ok > 0 {
		s.server = (after - before) / time.Duration(s.ok)
	}
	return s, nil
}

// scaleStep measures the scalability row: 1, 2 and 3 nodes on one
// PostgreSQL (and Redis), cookie and bearer requests spread over them,
// beside a bare handler. Without PostgreSQL only one node can run (the
// memory and SQLite stores belong to one process), and that is measured.
func scaleStep(ctx context.Context, r *labRun) error {
	row := r.row("scalability")
	d, rounds := 3*time.Second, 3
	if r.quick {
		d, rounds = time.Second, 1
	}
	const conns = 24
	maxNodes := 3
	if r.pgDB == "" {
		maxNodes = 1
	}
	var undo stops
	defer undo.run()
	var nodes []process
	var where string
	if r.pgDB != "" {
		r.progress("scalability: starting 3 nodes on PostgreSQL%s", map[bool]string{true: " + Redis", false: ""}[r.redis != nil])
		var err error
		if nodes, err = r.cluster(ctx, &undo, maxNodes, "--access-token-ttl", "1h"); err != nil {
			return err
		}
		where = "PostgreSQL (users, keys, audit; sessions too unless Redis is given)"
		if r.redis != nil {
			where = "PostgreSQL (users, keys, audit) and Redis (sessions, refresh families, revocations)"
		}
	} else {
		kind := r.stores[0]
		r.progress("scalability: no PostgreSQL given; one node on %s", kind)
		p, stop, err := r.server(kind, "--access-token-ttl", "1h").start(ctx)
		if err != nil {
			return err
		}
		undo.add(stop)
		nodes = []process{p}
		where = kind + " (a store of one process: it cannot be shared by a second node)"
	}
	cookie, body, err := signIn(ctx, nodes[0].base)
	if err != nil {
		return err
	}
	tk, err := retryBusy(ctx, 10, func() (tokens, error) { t, _, err := passwordGrant(ctx, nodes[0].base); return t, err })
	if err != nil {
		return err
	}
	bearer := "Bearer " + tk.AccessToken
	bp, stop, err := startBare(ctx, body)
	if err != nil {
		return err
	}
	undo.add(stop)
	bare := []process{bp}

	type job struct {
		name, path, header, value string
		nodes                     []process
	}
	jobs := []job{{"bare handler", "/v1/session", "Cookie", cookie, bare}}
	for k := 1; k <= maxNodes; k++ {
		jobs = append(jobs,
			job{fmt.Sprintf("cookie, %d node(s)", k), "/v1/session", "Cookie", cookie, nodes[:k]},
			job{fmt.Sprintf("bearer, %d node(s)", k), "/v1/userinfo", "Authorization", bearer, nodes[:k]})
	}
	rates := make([][]float64, len(jobs))
	cpus := make([][]float64, len(jobs))
	errs := 0
	for i := range jobs { // warm up
		if _, err := spread(ctx, jobs[i].nodes, jobs[i].path, jobs[i].header, jobs[i].value, conns, 300*time.Millisecond); err != nil {
			return err
		}
	}
	for round := range rounds {
		for i, j := range jobs {
			r.progress("scalability: round %d/%d, %s", round+1, rounds, j.name)
			s, err := spread(ctx, j.nodes, j.path, j.header, j.value, conns, d)
			if err != nil {
				return err
			}
			if s.errs > 0 {
				errs += s.errs
				fmt.Fprintf(r.stderr, "lab: scalability %s: %d errors, the first: %s\n", j.name, s.errs, s.firstErr)
			}
			rates[i] = append(rates[i], s.rate)
			cpus[i] = append(cpus[i], float64(s.server)/float64(time.Microsecond))
		}
	}
	t := table{caption: fmt.Sprintf("Requests spread round-robin over the nodes by %d closed-loop connections, %d round(s) of %s (medians); nodes on %s", conns, rounds, d, where),
		head: []string{"target", "requests/s", "× bare", "CPU/request (all nodes)"}}
	bareRate := median(rates[0])
	var cookieLine, bearerLine, bareLine []xy
	for i, j := range jobs {
		rate := median(rates[i])
		t.rows = append(t.rows, []string{j.name, fmt.Sprintf("%.0f", rate), fmt.Sprintf("%.2f", rate/bareRate), fmt.Sprintf("%.0f µs", median(cpus[i]))})
		if i == 0 {
			r.add("scalability", "throughput, bare net/http handler", "requests/s", rate, "")
			continue
		}
		k := float64(len(j.nodes))
		r.add("scalability", "throughput, "+j.name, "requests/s", rate, "bare net/http handler", bareRate)
		if (i-1)%2 == 0 {
			cookieLine = append(cookieLine, xy{k, rate})
			bareLine = append(bareLine, xy{k, bareRate})
		} else {
			bearerLine = append(bearerLine, xy{k, rate})
		}
	}
	row.tables = append(row.tables, t)
	row.plots = append(row.plots, linePlot("Throughput against nodes", "nodes", "requests/s", false,
		[]series{{"cookie (GET /v1/session)", cookieLine}, {"bearer (GET /v1/userinfo)", bearerLine}, {"bare handler (one process)", bareLine}}))

	last := func(l []xy) float64 { return l[len(l)-1].y }
	if maxNodes > 1 {
		row.Measured = fmt.Sprintf("On %d cores, cookie requests ran at %.0f/s on 1 node and %.0f/s on %d; bearer at %.0f/s and %.0f/s; the bare handler at %.0f/s. %d requests failed.",
			coresOf(r), cookieLine[0].y, last(cookieLine), maxNodes, bearerLine[0].y, last(bearerLine), bareRate, errs)
		row.Verdict = "Both scale out the same way here: cookie sessions live in the shared store every node reads, so no sticky sessions are needed; tokens need the shared revocation log for the same reason."
	} else {
		row.Measured = fmt.Sprintf("One node on %s: cookie %.0f/s, bearer %.0f/s, bare handler %.0f/s. More nodes need a shared store: rerun with --stores including postgres://... (and redis://...).",
			r.stores[0], cookieLine[0].y, bearerLine[0].y, bareRate)
		row.Verdict = "Not settled by this run: only one node could run (no shared store given)."
	}
	row.Notes = append(row.Notes,
		fmt.Sprintf("Honest limits: every node, the store(s) and the load generator share this machine's %d cores, so more nodes cannot add CPU. What this shows is that requests spread over nodes all succeed on one shared store, and what the coordination costs per request; on a machine with a core per node, throughput grows with nodes until the store saturates.", coresOf(r)),
		"Idle nodes still poll the revocation log and the signing keys in the background, which costs a little of the shared CPU.")
	if errs > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("%d requests failed during the runs; see the lab's progress output.", errs))
	}
	return nil
}

func coresOf(r *labRun) int { return r.res.Machine.Cores }
