package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The systemd unit and the Dockerfile of docs/deploying.md, from this
// package's folder.
const (
	unitFile   = "../../deploy/systemd/stephub.service"
	dockerfile = "../../Dockerfile"
)

// TestSystemdUnit verifies the unit with systemd-analyze and checks that
// its stop timeout covers the server's drain: a real server with open
// streams and a running job exits cleanly on SIGTERM well within it.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatalf("%s sets no TimeoutStopSec", unitFile)
	}
	stopTimeout, err := time.ParseDuration(m[1])
	if err != nil || stopTimeout <= shutdownTimeout {
		t.Fatalf("TimeoutStopSec=%s: want a duration longer than the server's drain, %v", m[1], shutdownTimeout)
	}
	for _, want := range []string{"KillSignal=SIGTERM", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/stephub", "DATABASE_URL=sqlite:///var/lib/stephub/"} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s has no %s", unitFile, want)
		}
	}

	// systemd-analyze checks that ExecStart's program exists: point it at
	// a built one.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is missing (apt-get install systemd; .ci/run does): %v", err)
	}
	const execStart = "ExecStart=/usr/local/bin/stephub serve"
	if !strings.Contains(unit, execStart) {
		t.Fatalf("%s has no %q", unitFile, execStart)
	}
	verify := filepath.Join(t.TempDir(), "stephub.service")
	if err := os.WriteFile(verify, []byte(strings.Replace(unit, execStart, "ExecStart="+stephubBinary(t)+" serve", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", verify).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// What systemd does at stop: SIGTERM, to a server that streams.
	n := startNode(t, "sqlite://"+filepath.Join(t.TempDir(), "stephub.db"), map[string]string{"STEP_DELAY": "5s"})
	s := n.server()
	token := userToken(t, "stopped")
	v := generate(t, s, token)
	sse := openStream(t, s, token, v.ID, "")
	sse.take(t, 1)
	ws, _, err := dialWS(t, s, token, v.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.ReadMessage()
	start := time.Now()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		t.Fatalf("the server did not exit within TimeoutStopSec=%v of SIGTERM:\n%s", stopTimeout, n.logs.String())
	}
	took := time.Since(start)
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status after SIGTERM: %d; want 0\n%s", code, n.logs.String())
	}
	t.Logf("exited %v after SIGTERM, with a job and two streams open", took.Round(time.Millisecond))
}

// TestDockerfileBuild runs the Dockerfile's go build line as written, with
// only its output path changed (the machines that run the tests have no
// Docker engine), and checks that the binary is static and serves with
// the image's settings.
func TestDockerfileBuild(t *testing.T) {
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .* -o /out/stephub \./cmd/stephub)$`).FindStringSubmatch(string(data))
	env := regexp.MustCompile(`(?m)^ENV (.*)$`).FindStringSubmatch(string(data))
	if build == nil || env == nil {
		t.Fatalf("%s: want a RUN CGO_ENABLED=0 go build … -o /out/stephub ./cmd/stephub line and an ENV line", dockerfile)
	}
	bin := filepath.Join(t.TempDir(), "stephub")
	cmd := exec.Command("sh", "-eu", "-c", strings.Replace(build[1], "-o /out/stephub", "-o "+bin, 1))
	cmd.Dir = "../.." // WORKDIR /src, where COPY . . put the repository
	cmd.Env = append(os.Environ(), "VERSION=docker-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("the binary asks for a dynamic loader; distroless/static has none")
		}
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), "docker-test") {
		t.Errorf("stephub version: %v %q; want the build's VERSION", err, out)
	}

	// The image's ENV, with the database moved from /data to a folder of
	// the test's and the port to any.
	vars := map[string]string{}
	for _, kv := range strings.Fields(env[1]) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	if vars["DATABASE_URL"] != "sqlite:///data/stephub.db" || vars["ADDR"] != ":8000" {
		t.Fatalf("the image's ENV: %v; want ADDR=:8000 and the database in the /data volume", vars)
	}
	n := startNodeOf(t, bin, "sqlite://"+filepath.Join(t.TempDir(), "data", "stephub.db"), nil)
	token := userToken(t, "contained")
	v := generate(t, n.server(), token)
	checkComplete(t, "the Dockerfile's binary", openStream(t, n.server(), token, v.ID, "").readAll(t))
	if resp, body := call(t, "GET", n.URL+"/readyz", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("GET /readyz: %d %s", resp.StatusCode, body)
	}
}
