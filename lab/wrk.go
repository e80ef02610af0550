package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkLoad is a loadFunc: Debian's wrk, one thread, conns connections. A
// target whose header takes more than one value, or that asks for it,
// gets them from a Lua script that cycles through them (wrk -s).
func wrkLoad(conns int) loadFunc {
	return func(ctx context.Context, t target, d time.Duration) (sample, time.Duration, error) {
		args := []string{"-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", max(1, int(d.Seconds()))), "--latency"}
		switch {
		case t.header == "":
		case t.script || len(t.values) > 1:
			script, cleanup, err := wrkScript(t.header, t.values)
			if err != nil {
				return sample{}, 0, err
			}
			defer cleanup()
			args = append(args, "-s", script)
		default:
			args = append(args, "-H", t.header+": "+t.values[0])
		}
		cmd := exec.CommandContext(ctx, "wrk", append(args, t.url)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return sample{}, 0, fmt.Errorf("wrk %s: %w: %s", t.name, err, out)
		}
		s, err := parseWrk(string(out))
		if err != nil {
			return sample{}, 0, fmt.Errorf("wrk %s: %w:\n%s", t.name, err, out)
		}
		return s, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
}

// wrkScript writes a wrk Lua script that sends header with each of values
// in turn, and the file of values it reads; cleanup removes both.
func wrkScript(header string, values []string) (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "sesame-lab-wrk-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	list := filepath.Join(dir, "values")
	if err := os.WriteFile(list, []byte(strings.Join(values, "\n")+"\n"), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	path = filepath.Join(dir, "cycle.lua")
	if err := os.WriteFile(path, []byte(luaCycle(header, list)), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// luaCycle is a wrk script that sends header with each line of the file
// list in turn.
func luaCycle(header, list string) string {
	return fmt.Sprintf(`local values = {}
for line in io.lines(%q) do values[#values + 1] = line end
local header, i = %q, 0
request = function()
  i = i %% #values + 1
  return wrk.format(nil, nil, {[header] = values[i]})
end
`, list, header)
}

// parseWrk reads the report of "wrk --latency": the rate of 2xx/3xx
// answers, the median and 99th percentile latency, and the errors (non-2xx
// or 3xx answers and socket errors).
func parseWrk(out string) (sample, error) {
	var (
		s                 sample
		requests, non2xx  int
		perSec            float64
		havePerSec, haveN bool
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			s.p50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			s.p99 = wrkDuration(f[1])
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			requests, _ = strconv.Atoi(f[0])
			haveN = true
		case len(f) == 2 && f[0] == "Requests/sec:":
			perSec, _ = strconv.ParseFloat(f[1], 64)
			havePerSec = true
		case len(f) == 5 && f[0] == "Non-2xx":
			non2xx, _ = strconv.Atoi(f[4])
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 3; i < len(f); i += 2 {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i], ","))
				s.errs += n
			}
		}
	}
	if !havePerSec || !haveN || requests == 0 {
		return sample{}, fmt.Errorf("no request count or rate in wrk's report")
	}
	s.ok = requests - non2xx
	s.errs += non2xx
	s.rate = perSec * float64(s.ok) / float64(requests)
	if non2xx > 0 {
		s.firstErr = fmt.Sprintf("%d non-2xx or 3xx answers", non2xx)
	}
	return s, nil
}

// wrkDuration parses a latency as wrk prints it: 812.00us, 1.23ms, 1.01s.
// It returns 0 for anything else.
func wrkDuration(v string) time.Duration {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}} {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			x, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0
			}
			return time.Duration(x * float64(u.unit))
		}
	}
	return 0
}
