package lab

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want sample
	}{{
		name: "all ok",
		out: `Running 5s test @ http://127.0.0.1:40000/v1/session
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms    0.40ms  17.46ms   85.00%
    Req/Sec     9.95k     1.02k   11.00k    80.00%
  Latency Distribution
     50%  812.00us
     75%    1.12ms
     90%    1.50ms
     99%    3.45ms
  49750 requests in 5.00s, 26.00MB read
Requests/sec:   9950.00
Transfer/sec:      5.20MB
`,
		want: sample{rate: 9950, p50: 812 * time.Microsecond, p99: 3450 * time.Microsecond, ok: 49750},
	}, {
		name: "errors",
		out: `  Latency Distribution
     50%    1.00s
     99%    2.00s
  1000 requests in 10.00s, 1.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 250
Requests/sec:    100.00
`,
		want: sample{rate: 75, p50: time.Second, p99: 2 * time.Second, ok: 750, errs: 255, firstErr: "250 non-2xx or 3xx answers"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseWrk = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := parseWrk("wrk: command not found\n"); err == nil {
		t.Error("parseWrk of no report: no error")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
