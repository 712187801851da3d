package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stephub/stephub/internal/testdb"
)

// docFiles are the Markdown files whose shell blocks TestDocCommands
// accounts for, from the repository's root.
var docFiles = []string{"README.md", "CONTRIBUTING.md", "docs/*.md", "clients/*/README.md"}

// docCommand says how one shell block of the docs is kept true: run here
// by a runner, run by a named test, or not run, with why. Blocks are named
// by their file and first line.
type docCommand struct {
	run    string // a key of docRunners: run with the other blocks it names
	test   string // a test function that runs what the block does
	make   string // a target that `make test` runs
	notRun string // why no test on these machines can run it
}

var docCommands = map[string]docCommand{
	"README.md: make run    # the server on :8000, SQLite in ./data, with the mock pipeline": {
		notRun: "`make run` serves on :8000 until stopped; .ci/run runs `make test`, and the walkthrough below runs against the same `stephub serve`"},
	`README.md: # A token for user "demo", signed with the same dev secret the server uses.`:                           {run: "walkthrough"},
	`README.md: curl -s http://localhost:8000/api/v1/users/me -H "Authorization: Bearer $TOKEN"`:                       {run: "walkthrough"},
	`docs/streaming.md: # The answer: {"ticket": "eyJhbGciOiJIUzI1NiIs…", "expires_at": "2026-12-03T10:10:00Z"}`:       {run: "walkthrough"},
	`docs/api.md: curl -s -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: application/json" \`:        {run: "admin"},
	"docs/browser.md: bin/stephub serve -tls-cert cert.pem -tls-key key.pem   # or TLS_CERT, TLS_KEY":                  {test: "TestServeTLSSpeaksHTTP2"},
	"docs/deploying.md: cp deploy/nginx/stephub.conf /etc/nginx/conf.d/stephub.conf   # then edit the names and paths": {test: "TestNginxExample"},
	"docs/deploying.md: useradd --system --home-dir /var/lib/stephub --shell /usr/sbin/nologin stephub": {
		notRun: "it installs into /etc and /usr/local and starts a service, and the test machines run without systemd as init; TestSystemdUnit verifies the unit and its stop timing"},
	"docs/deploying.md: docker build --build-arg VERSION=$(git describe --always) -t stephub .": {
		notRun: "the test machines have no Docker engine; TestDockerfileBuild runs the Dockerfile's go build and the binary it makes"},
	"docs/deploying.md: createdb -h 127.0.0.1 -U postgres stephub   # once: stephub creates its tables, not its database": {test: "TestMakeClusterStopsOnSignal"},
	"docs/deploying.md: TOKEN=$(python3 -c '": {run: "jwt"},
	"docs/monitoring.md: prometheus --config.file=deploy/prometheus/prometheus.yml": {
		notRun: "the test machines have no Prometheus; TestMonitoringFilesUseExportedMetrics checks the files it loads"},
	"docs/operating.md: bin/stephub backup -o /var/backups/stephub-$(date +%F).db   # DATABASE_URL as for serve": {run: "backup"},
	`docs/operating.md: pg_dump --format=custom --file=stephub.dump "$DATABASE_URL"      # while the nodes run`:  {test: "TestBackupPostgresWithPgDump"},
	"docs/performance.md: make build load":                                                                                                       {test: "TestClusterLoadScript"},
	"docs/performance.md: cd bench && go build -o ../bin/floor ./cmd/floor && cd ..":                                                             {test: "TestFloorCluster"},
	"docs/performance.md: PIPELINE=external MAX_STREAMS_PER_USER=0 WORKER_TOKEN=w ADMIN_TOKEN=a LOG_LEVEL=warn bin/stephub serve &":              {test: "TestLoadRun"},
	"docs/workers.md: PIPELINE=external WORKER_TOKEN=secret make run     # the server":                                                           {test: "TestWorkersRunEveryVideo"},
	`docs/workers.md: CLAIM=$(curl -s -X POST -H "Authorization: Bearer secret" "http://localhost:8000/api/v1/worker/claim?wait=30s")`:           {test: "TestDocCurlWorker"},
	"clients/python/README.md: make test-python    # builds bin/stephub, then: python3 -m unittest discover -s clients/python -t clients/python": {make: "test-python"},
	"CONTRIBUTING.md: apt-get install -y postgresql chromium python3-requests nodejs npm nginx curl jq": {
		notRun: "it installs system packages as root; .ci/run installs the same ones when they are missing"},
}

// docRunners run the blocks that name them, in the docs' order, as one
// script against a server of their own, and check what it printed.
var docRunners = map[string]func(t *testing.T, script string){
	// The curl walkthrough: the dev mode's secret, as `make run` has it.
	"walkthrough": func(t *testing.T, script string) {
		s := startServer(t, testdb.SQLite(t), map[string]string{"JWT_SECRET": ""})
		out := runDocScript(t, s, script, nil)
		for _, want := range []string{`"status":"completed"`, `"credits":900`, "id: 5\n", `"step":9`} {
			if !strings.Contains(out, want) {
				t.Errorf("the walkthrough printed no %q:\n%s", want, out)
			}
		}
	},
	"admin": func(t *testing.T, script string) {
		s := startServer(t, testdb.SQLite(t), nil)
		out := runDocScript(t, s, script, []string{"ADMIN_TOKEN=" + testAdminToken})
		if !strings.Contains(out, `"id":"demo"`) || !strings.Contains(out, `"credits":5000,"subscription_status":"active"`) {
			t.Errorf("the admin example printed:\n%s", out)
		}
	},
	"jwt": func(t *testing.T, script string) {
		s := startServer(t, testdb.SQLite(t), nil)
		out := runDocScript(t, s, script, []string{"JWT_SECRET=" + testJWTSecret})
		if !strings.Contains(out, `{"id":"alice","email":"alice@example.com","credits":1000,`) {
			t.Errorf("the minted token's user:\n%s", out)
		}
	},
	// A backup of a database that a server serves, into a folder of the
	// test's in place of /var/backups.
	"backup": func(t *testing.T, script string) {
		db := "sqlite://" + filepath.Join(t.TempDir(), "stephub.db")
		s := startServer(t, db, nil)
		generate(t, s, userToken(t, "backed-up"))
		dir := t.TempDir()
		runDocScript(t, s, strings.ReplaceAll(script, "/var/backups/", dir+"/"), []string{"DATABASE_URL=" + db})
		if files, _ := filepath.Glob(filepath.Join(dir, "stephub-*.db")); len(files) != 1 {
			t.Errorf("the backup wrote %v; want one stephub-DATE.db", files)
		}
	},
}

// TestDocCommands finds every shell block of the docs and runs it, or
// checks that the test it names exists, or that it says why it is not
// run. A block it does not know fails it, so the docs cannot drift.
func TestDocCommands(t *testing.T) {
	blocks := docShellBlocks(t)
	scripts := map[string][]string{}
	for _, b := range blocks {
		c, ok := docCommands[b.key]
		if !ok {
			t.Errorf("%s: a shell block TestDocCommands does not know; add it to docCommands, run by a runner, a test or make test, or say why it cannot run", b.key)
			continue
		}
		switch {
		case c.run != "":
			scripts[c.run] = append(scripts[c.run], b.text)
		case c.test != "":
			if !testExists(t, c.test) {
				t.Errorf("%s: the test %s is not in the repository", b.key, c.test)
			}
		case c.make != "":
			if !makeTestRuns(t, c.make) {
				t.Errorf("%s: make test does not run %s", b.key, c.make)
			}
		case c.notRun == "":
			t.Errorf("%s: says neither how it is run nor why it is not", b.key)
		}
	}
	known := map[string]bool{}
	for _, b := range blocks {
		known[b.key] = true
	}
	for key := range docCommands {
		if !known[key] {
			t.Errorf("docCommands names %s, which no doc has any more", key)
		}
	}
	for name, run := range docRunners {
		if len(scripts[name]) == 0 {
			t.Errorf("the runner %s has no block to run", name)
			continue
		}
		t.Run(name, func(t *testing.T) { run(t, strings.Join(scripts[name], "\n")) })
	}
}

// shellBlock is a shell block of a doc: its file and first line, and its
// text with the fence's indent taken off.
type shellBlock struct{ key, text string }

var fenceOpen = regexp.MustCompile("^( *)```(sh|bash|console)\\s*$")

// docShellBlocks returns the shell blocks of docFiles, in order.
func docShellBlocks(t *testing.T) []shellBlock {
	t.Helper()
	var out []shellBlock
	for _, pattern := range docFiles {
		paths, err := filepath.Glob("../../" + pattern)
		if err != nil || len(paths) == 0 {
			t.Fatalf("no %s: %v", pattern, err)
		}
		for _, path := range paths {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(path, "../../")
			lines := strings.Split(string(data), "\n")
			for i := 0; i < len(lines); i++ {
				m := fenceOpen.FindStringSubmatch(lines[i])
				if m == nil {
					continue
				}
				var body []string
				for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
					body = append(body, strings.TrimPrefix(lines[i], m[1]))
				}
				if len(body) == 0 {
					t.Fatalf("%s: an empty shell block", name)
				}
				out = append(out, shellBlock{key: name + ": " + body[0], text: strings.Join(body, "\n") + "\n"})
			}
		}
	}
	return out
}

// runDocScript runs script with sh -eu, as a reader would paste it, with
// bin/stephub built and the server s in place of localhost:8000; it
// returns what the script printed.
func runDocScript(t *testing.T, s *testServer, script string, env []string) string {
	t.Helper()
	script = strings.ReplaceAll(script, "http://localhost:8000", s.URL)
	script = strings.ReplaceAll(script, "bin/stephub", stephubBinary(t))
	cmd := exec.Command("sh", "-eu", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n--- script:\n%s--- output:\n%s", err, script, out)
	}
	return string(out)
}

// testExists reports whether a test function of that name is in the
// repository's Go tests.
func testExists(t *testing.T, name string) bool {
	t.Helper()
	out, _ := exec.Command("grep", "-rlE", "--include=*_test.go", "^func "+name+`\(t \*testing\.T\)`, "../..").Output()
	return len(out) > 0
}

// makeTestRuns reports whether the Makefile's test target runs every
// command of target's recipe.
func makeTestRuns(t *testing.T, target string) bool {
	t.Helper()
	data, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := func(name string) []string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:[^\n]*\n((?:\t[^\n]*\n)*)`).FindSubmatch(data)
		if m == nil {
			return nil
		}
		return strings.Split(strings.TrimSpace(string(m[1])), "\n")
	}
	test, want := strings.Join(recipe("test"), "\n"), recipe(target)
	for _, line := range want {
		if !strings.Contains(test, strings.TrimSpace(line)) {
			return false
		}
	}
	return len(want) > 0
}
