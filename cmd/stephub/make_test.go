package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
)

// makeCluster starts `make cluster` in the repository's root with the
// nodes on ports, BIN in a folder of the test's, and DATABASE_URL set to
// databaseURL, in a process group of its own.
func makeCluster(t *testing.T, databaseURL string, ports ...int) (*exec.Cmd, *logbuf.Buffer) {
	t.Helper()
	var list []string
	for _, p := range ports {
		list = append(list, fmt.Sprint(p))
	}
	cmd := exec.Command("make", "-s", "-C", "../..", "cluster", "BIN="+t.TempDir(), "CLUSTER_PORTS="+strings.Join(list, " "))
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "JWT_SECRET="+testJWTSecret)
	out := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, out
}

// waitExit waits for cmd to exit within d and returns its error.
func waitExit(t *testing.T, cmd *exec.Cmd, out *logbuf.Buffer, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("make cluster still running after %v:\n%s", d, out)
		return nil
	}
}

// freePort returns a port that nothing listens on now, on any address,
// as the cluster's nodes listen.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// answers reports whether a node serves /healthz on port.
func answers(port int) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestMakeClusterFailsWithItsNodes runs `make cluster` where its nodes
// cannot run: a database that does not exist, then a port that is taken.
// Each time make exits non-zero, promptly, and leaves no node running.
func TestMakeClusterFailsWithItsNodes(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	t.Run("missing database", func(t *testing.T) {
		u, err := url.Parse(testdb.Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path += "_missing"
		port := freePort(t)
		cmd, out := makeCluster(t, u.String(), port)
		err = waitExit(t, cmd, out, 2*time.Minute)
		if err == nil {
			t.Fatalf("make cluster exited 0 on a missing database:\n%s", out)
		}
		if n := strings.Count(out.String(), "does not exist"); n != 1 || !strings.Contains(out.String(), "create it first (createdb") {
			t.Errorf("make cluster said %d times that the database does not exist, or not how to create it:\n%s", n, out)
		}
	})
	t.Run("port taken", func(t *testing.T) {
		taken, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		free := freePort(t)
		cmd, out := makeCluster(t, testdb.Postgres(t), free, taken.Addr().(*net.TCPAddr).Port)
		err = waitExit(t, cmd, out, 2*time.Minute)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("make cluster with a node that cannot listen: %v; want a non-zero exit\n%s", err, out)
		}
		if answers(free) {
			t.Errorf("the node on :%d still runs after make cluster exited:\n%s", free, out)
		}
	})
}

// TestMakeClusterStopsOnSignal sends Ctrl-C's SIGINT to `make cluster`'s
// process group once its nodes listen: every node stops.
func TestMakeClusterStopsOnSignal(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	url := testdb.Postgres(t)
	// Another process may take a port between freePort and the node's
	// listen; the cluster then fails, as it should, and is tried again.
	for try := 1; ; try++ {
		ports := []int{freePort(t), freePort(t)}
		cmd, out := makeCluster(t, url, ports...)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if !clusterAnswers(t, ports, exited, out) {
			if try < 3 && strings.Contains(out.String(), "address already in use") {
				continue
			}
			t.Fatalf("make cluster exited before its nodes answered:\n%s", out)
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("make cluster still running 30 s after SIGINT:\n%s", out)
		}
		for _, p := range ports {
			if answers(p) {
				t.Errorf("node on :%d still answers after SIGINT:\n%s", p, out)
			}
		}
		return
	}
}

// clusterAnswers waits until a node answers on each port, and reports
// whether one did before the cluster exited; it fails the test after 2
// minutes.
func clusterAnswers(t *testing.T, ports []int, exited <-chan error, out *logbuf.Buffer) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range ports {
		for !answers(p) {
			select {
			case <-exited:
				return false
			case <-ctx.Done():
				t.Fatalf("node on :%d not answering after 2 minutes:\n%s", p, out)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return true
}

// TestMakeCheckPostgresProbesTheTestServer: `make check-postgres` probes
// the server STEPHUB_TEST_POSTGRES names, not the local one, when it is
// set.
func TestMakeCheckPostgresProbesTheTestServer(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	for _, tc := range []struct {
		url  string
		fine bool
	}{
		{testdb.DefaultPostgresAdminURL, true},
		{fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", freePort(t)), false},
	} {
		cmd := exec.Command("make", "-s", "-C", "../..", "check-postgres")
		cmd.Env = append(os.Environ(), testdb.PostgresEnv+"="+tc.url)
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.fine {
			t.Errorf("make check-postgres with %s=%s: %v; want success %v\n%s", testdb.PostgresEnv, tc.url, err, tc.fine, out)
		}
	}
}
