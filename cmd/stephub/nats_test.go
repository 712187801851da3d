package main

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

// natsServerBin is Debian's nats-server (package nats-server).
const natsServerBin = "/usr/sbin/nats-server"

// natsServer is a nats-server child process on a free loopback port, which
// a test can stop and start again on the same port.
type natsServer struct {
	URL           string // nats://127.0.0.1:port, a node's BROKER
	port, monitor int    // the client port and the HTTP monitoring one
	logs          *logbuf.Buffer
	cmd           *exec.Cmd
	done          chan struct{} // closed when cmd has exited
	// in and out count the messages of the runs Stop ended.
	in, out int64
}

// startNATS runs nats-server until the end of the test. At the end it
// fails the test, if nothing else did, when the server carried no message:
// the nodes did not pass their events through NATS.
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	if _, err := os.Stat(natsServerBin); err != nil {
		t.Fatalf("%s is missing (apt-get install nats-server): the NATS broker's tests need it", natsServerBin)
	}
	ns := &natsServer{port: freePort(t), monitor: freePort(t), logs: &logbuf.Buffer{}}
	ns.URL = fmt.Sprintf("nats://127.0.0.1:%d", ns.port)
	ns.Start(t)
	t.Cleanup(func() {
		ns.Stop(t)
		if !t.Failed() && (ns.in == 0 || ns.out == 0) {
			t.Errorf("nats-server carried %d messages in, %d out; want some each way: did the nodes use BROKER=%s?", ns.in, ns.out, ns.URL)
		}
	})
	return ns
}

// Start runs the server and waits until it takes connections.
func (ns *natsServer) Start(t *testing.T) {
	t.Helper()
	ns.cmd = exec.Command(natsServerBin, "-a", "127.0.0.1", "-p", strconv.Itoa(ns.port), "-m", strconv.Itoa(ns.monitor))
	ns.cmd.Stdout, ns.cmd.Stderr = ns.logs, ns.logs
	if err := ns.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ns.done = done
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(done)
	}(ns.cmd)
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ns.port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("nats-server exited before listening:\n%s", ns.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not listening on %d after 10s:\n%s", ns.port, ns.logs.String())
		}
	}
}

// Stop ends the server, as an operator stopping it would, and waits for it
// to exit; it does nothing when the server is not running.
func (ns *natsServer) Stop(t *testing.T) {
	t.Helper()
	if !ns.running() {
		return
	}
	in, out := ns.messages(t)
	ns.in, ns.out = ns.in+in, ns.out+out
	ns.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ns.done:
	case <-time.After(10 * time.Second):
		ns.cmd.Process.Kill()
		<-ns.done
		t.Errorf("nats-server did not stop within 10s:\n%s", ns.logs.String())
	}
}

func (ns *natsServer) running() bool {
	select {
	case <-ns.done:
		return false
	default:
		return true
	}
}

// messages returns how many messages the server took in from publishers
// and sent out to subscribers since it last started.
func (ns *natsServer) messages(t *testing.T) (in, out int64) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", ns.monitor))
	if err != nil {
		t.Fatalf("nats-server monitoring: %v", err)
	}
	defer resp.Body.Close()
	var varz struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		t.Fatalf("nats-server /varz: %v", err)
	}
	return varz.InMsgs, varz.OutMsgs
}
