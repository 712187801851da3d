package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterLoadScript runs scripts/cluster-load tiny on each engine, so
// that it cannot rot: three nodes, nothing lost, and PostgreSQL's cost
// measured.
func TestClusterLoadScript(t *testing.T) {
	stephub := buildStephub(t)
	load := filepath.Join(t.TempDir(), "stephub-load")
	if out, err := exec.Command("go", "build", "-o", load, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, engine := range []string{"notify", "nats"} {
		t.Run(engine, func(t *testing.T) {
			out, err := exec.Command("../../../scripts/cluster-load", stephub, load, engine, "2",
				"-videos", "2", "-subscribers", "8", "-rate", "20", "-duration", "1s", "-posters", "2", "-source-ips", "2").CombinedOutput()
			if err != nil {
				t.Fatalf("scripts/cluster-load: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			field := func(name string) string {
				m := regexp.MustCompile(` ` + name + `=(\S+)`).FindStringSubmatch(last)
				if m == nil {
					t.Fatalf("no %s in %q", name, out)
				}
				return m[1]
			}
			if !strings.HasPrefix(last, "engine="+engine+" nodes=3 ") || field("events") != "20" || field("lost") != "0" {
				t.Errorf("last line %q; want engine=%s nodes=3, events=20 lost=0", last, engine)
			}
			if d, err := time.ParseDuration(field("p99")); err != nil || d <= 0 {
				t.Errorf("p99=%s; want a positive duration", field("p99"))
			}
			for _, name := range []string{"pg_cpu", "rows_fetched/event", "nodes_cpu"} {
				if v, err := strconv.ParseFloat(strings.TrimRight(field(name), "sµ"), 64); err != nil || v <= 0 {
					t.Errorf("%s=%s; want a positive number", name, field(name))
				}
			}
		})
	}
}
