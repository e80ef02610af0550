package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"context"
)

// deployFile reads a file of deploy/.
func deployFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeploySystemdUnit checks deploy/sesame.service with systemd-analyze
// verify, which must print nothing (it exits 0 even on a bad value, with a
// warning). The binary and the environment file are pointed at files that
// exist here. Skipped where systemd-analyze is missing, in CI too: CI
// machines need not have systemd.
func TestDeploySystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "sesame.env")
	if err := os.WriteFile(env, []byte(deployFile(t, "sesame.env")), 0o600); err != nil {
		t.Fatal(err)
	}
	unit := deployFile(t, "sesame.service")
	for _, want := range []string{"ExecStart=/usr/local/bin/sesame serve", "EnvironmentFile=/etc/sesame/sesame.env", "NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("deploy/sesame.service lacks %q", want)
		}
	}
	unit = strings.ReplaceAll(unit, "/usr/local/bin/sesame", self)
	unit = strings.ReplaceAll(unit, "/etc/sesame/sesame.env", env)
	path := filepath.Join(dir, "sesame.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify deploy/sesame.service: %v\n%s", err, out)
	}
}

// TestDeployVariablesAreFlags: every SESAME_ variable that deploy/ sets is a
// flag of serve (or SESAME_MASTER_KEY), so a renamed flag cannot leave the
// examples silently ignored.
func TestDeployVariablesAreFlags(t *testing.T) {
	var c serveConfig
	fs := c.flagSet(nil)
	known := map[string]bool{"SESAME_MASTER_KEY": true}
	for _, name := range []string{"addr", "issuer", "data-dir", "db", "session-store", "registration", "trusted-proxies", "log-format", "allowed-origins", "metrics-addr"} {
		if fs.Lookup(name) == nil {
			t.Fatalf("serve has no --%s", name)
		}
	}
	re := regexp.MustCompile(`SESAME_[A-Z_]+`)
	for _, f := range []string{"sesame.env", "Dockerfile", "compose/compose.yaml"} {
		for _, v := range re.FindAllString(deployFile(t, f), -1) {
			if known[v] {
				continue
			}
			name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(v, "SESAME_"), "_", "-"))
			if fs.Lookup(name) == nil {
				t.Errorf("deploy/%s sets %s, but serve has no --%s", f, v, name)
			}
		}
	}
}

// TestDeployDockerfile: a FROM scratch image of the static binary, not
// root, whose HEALTHCHECK asks the port the image's environment makes serve
// listen on.
func TestDeployDockerfile(t *testing.T) {
	d := deployFile(t, "Dockerfile")
	for _, want := range []string{"CGO_ENABLED=0", "\nFROM scratch\n", `HEALTHCHECK`, `["/sesame", "healthcheck"]`} {
		if !strings.Contains(d, want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(d)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("deploy/Dockerfile: USER %v, want a non-root user", user)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(SESAME_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(d, -1) {
		env[m[1]] = m[2]
	}
	expose := regexp.MustCompile(`(?m)^EXPOSE (\d+)`).FindStringSubmatch(d)
	if got := defaultHealthURL(e2eEnv(env)); expose == nil || got != "http://127.0.0.1:"+expose[1]+"/healthz" {
		t.Errorf("the image's healthcheck asks %s; the image exposes %v", got, expose)
	}
}
