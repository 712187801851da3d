// Package testnats runs Debian's nats-server for tests: a child process on
// a free loopback port, which a test can stop and start again on the same
// port, as an operator restarting it would.
package testnats

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/logbuf"
)

// Bin is Debian's nats-server (package nats-server).
const Bin = "/usr/sbin/nats-server"

// Server is a nats-server child process.
type Server struct {
	URL           string // nats://127.0.0.1:port
	port, monitor int    // the client port and the HTTP monitoring one
	logs          *logbuf.Buffer
	cmd           *exec.Cmd
	done          chan struct{} // closed when cmd has exited
	// in and out count the messages of the runs Stop ended.
	in, out int64
}

// Start runs a server until the end of the test; it fails the test, not
// skips it, when nats-server is missing.
func Start(t *testing.T) *Server {
	t.Helper()
	if _, err := os.Stat(Bin); err != nil {
		t.Fatalf("%s is missing (apt-get install nats-server): the NATS broker's tests need it", Bin)
	}
	s := &Server{port: freePort(t), monitor: freePort(t), logs: &logbuf.Buffer{}}
	s.URL = fmt.Sprintf("nats://127.0.0.1:%d", s.port)
	t.Cleanup(func() { s.Stop(t) }) // before Start, which may fail the test
	s.Start(t)
	return s
}

// Start runs the server again and waits until it takes connections.
func (s *Server) Start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(Bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-m", strconv.Itoa(s.monitor))
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(done)
	}(s.cmd)
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("nats-server exited before listening:\n%s", s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not listening on %d after 10s:\n%s", s.port, s.logs.String())
		}
	}
}

// Stop ends the server and waits for it to exit; it does nothing when the
// server is not running.
func (s *Server) Stop(t *testing.T) {
	t.Helper()
	if !s.running() {
		return
	}
	if in, out, err := s.runMessages(); err != nil {
		t.Errorf("nats-server's message counts: %v", err)
	} else {
		s.in, s.out = s.in+in, s.out+out
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("nats-server did not stop within 10s:\n%s", s.logs.String())
	}
}

// Messages returns how many messages the server took in from publishers
// and sent out to subscribers, over all its runs.
func (s *Server) Messages(t *testing.T) (in, out int64) {
	t.Helper()
	in, out = s.in, s.out
	if s.running() {
		i, o, err := s.runMessages()
		if err != nil {
			t.Fatalf("nats-server's message counts: %v", err)
		}
		in, out = in+i, out+o
	}
	return in, out
}

// running reports whether a started server has not exited.
func (s *Server) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// runMessages reads the message counts of the current run from the
// server's monitoring port.
func (s *Server) runMessages() (in, out int64, err error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", s.monitor))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var varz struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		return 0, 0, fmt.Errorf("/varz: %w", err)
	}
	return varz.InMsgs, varz.OutMsgs, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
