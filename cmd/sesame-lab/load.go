package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what one load run saw.
type loadResult struct {
	ok       int             // answers with the wanted status
	errs     int             // other answers and failed requests
	elapsed  time.Duration   // from the first request to the last answer
	lat      []time.Duration // latency of each ok answer, sorted
	firstErr string          // what the first error was, for the report
}

// rate returns ok answers per second.
func (r loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// quantile returns the q-quantile (0 < q < 1) of the ok latencies.
func (r loadResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

// loadSpec is a closed-loop load: conns workers, each on its own
// keep-alive connection, each sending its next request when the last
// answer is read, until d has passed or max requests have been sent.
type loadSpec struct {
	conns int
	d     time.Duration
	max   int
	want  int // the status that counts as ok
	// newReq makes each request (one whose body has been sent cannot be
	// sent again). It costs the same against every target.
	newReq func() (*http.Request, error)
}

// run applies the load and reports what it saw. Requests in flight when
// the time is up are waited for (at most 30 s each), not cut off.
func (s loadSpec) run(ctx context.Context) loadResult {
	tr := &http.Transport{
		MaxIdleConnsPerHost: s.conns,
		MaxConnsPerHost:     s.conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		sent atomic.Int64
		mu   sync.Mutex
		res  loadResult
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(s.d)
	for range s.conns {
		wg.Go(func() {
			var lat []time.Duration
			ok, errs, firstErr := 0, 0, ""
			fail := func(msg string) {
				errs++
				if firstErr == "" {
					firstErr = msg
				}
			}
			for ctx.Err() == nil && time.Now().Before(deadline) && sent.Add(1) <= int64(s.max) {
				req, err := s.newReq()
				if err != nil {
					fail(err.Error())
					break
				}
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				_, readErr := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case readErr != nil:
					fail(readErr.Error())
				case resp.StatusCode != s.want:
					fail(resp.Status)
				default:
					ok++
					lat = append(lat, time.Since(t))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.ok += ok
			res.errs += errs
			res.lat = append(res.lat, lat...)
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// ms formats a duration as milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// us formats a duration as microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// verdict says whether got meets a goal of at least want.
func verdict(got, want float64) string {
	if got >= want {
		return "met"
	}
	return "**missed**"
}
