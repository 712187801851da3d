package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFloorCluster runs the cluster floor for a second at a low rate, so that
// it cannot rot: every event reaches every connection watching its video
// on both followers, and the latency and each process's CPU are printed.
func TestFloorCluster(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "floor")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "cluster", "-videos", "100", "-subscribers", "400", "-rate", "50",
		"-duration", "1s", "-warmup", "200ms", "-posters", "4").CombinedOutput()
	if err != nil {
		t.Fatalf("floor cluster: %v\n%s", err, out)
	}
	line := strings.TrimSpace(string(out))
	field := func(name string) string {
		m := regexp.MustCompile(` ` + name + `=(\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no %s in %q", name, line)
		}
		return m[1]
	}
	// 50 events, each to 2 connections per follower; half the videos
	// have none, and their connections close without a frame.
	if field("events") != "50" || field("deliveries") != "200" || field("lost") != "0" {
		t.Errorf("%q; want events=50 deliveries=200 lost=0", line)
	}
	if d, err := time.ParseDuration(field("p99")); err != nil || d <= 0 {
		t.Errorf("p99=%s; want a positive duration", field("p99"))
	}
	_, cpu, _ := strings.Cut(line, " cpu:")
	for _, role := range []string{"poster", "writer", "postgres", "nats", "followers", "readers"} {
		if !regexp.MustCompile(` ` + role + `=\d+\.\d\ds(,\d+\.\d\ds)*( |$)`).MatchString(cpu) {
			t.Errorf("cpu:%s; want %s's CPU seconds", cpu, role)
		}
	}
}
