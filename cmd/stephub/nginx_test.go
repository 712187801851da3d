package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
)

// The nginx example of docs/deploying.md, from this package's folder, and
// Debian's nginx, which .ci/run installs.
const (
	nginxExample = "../../deploy/nginx/stephub.conf"
	nginxPath    = "/usr/sbin/nginx"
)

// nginxTimeout is the proxy timeout the test puts in place of the
// example's, so that an idle stream outlives it within the test's time.
const nginxTimeout = 3 * time.Second

// proxyTimeout matches the example's proxy_read_timeout and
// proxy_send_timeout lines.
var proxyTimeout = regexp.MustCompile(`(?m)^(\s*proxy_(?:read|send)_timeout) (\d+)s;$`)

// nginxProxy is an nginx running the example config in front of a server.
type nginxProxy struct {
	HTTPS, HTTP string // https://127.0.0.1:port, http://127.0.0.1:port
	accessLog   string
	client      *http.Client
	tls         *tls.Config
}

// TestNginxExample runs deploy/nginx/stephub.conf, with only its ports,
// upstream, certificate, log paths and timeouts replaced, in front of a
// real server, and checks what docs/deploying.md says it does.
func TestNginxExample(t *testing.T) {
	data, err := os.ReadFile(nginxExample)
	if err != nil {
		t.Fatal(err)
	}
	timeouts := proxyTimeout.FindAllStringSubmatch(string(data), -1)
	if len(timeouts) != 2 {
		t.Fatalf("%s: %d proxy_read_timeout and proxy_send_timeout lines; want one each, which the test shortens", nginxExample, len(timeouts))
	}
	for _, m := range timeouts {
		if d, _ := time.ParseDuration(m[2] + "s"); d <= maxPingInterval {
			t.Errorf("%s %ss: want longer than the longest ping interval, %v", m[1], m[2], maxPingInterval)
		}
	}
	// A stream is silent for at most PING_INTERVAL; the test's nginx cuts
	// one silent for nginxTimeout.
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "PING_INTERVAL": "1s"})
	p := startNginx(t, string(data), strings.TrimPrefix(s.URL, "http://"))
	token := userToken(t, "proxied")
	v := generate(t, s, token)
	ticket, _ := issueTicket(t, s, token, v.ID)

	t.Run("redirect", func(t *testing.T) {
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, _ := callWith(t, noFollow, "GET", p.HTTP+"/videos/1?token=SECRET-REDIRECT", "", nil, nil)
		if loc := resp.Header.Get("Location"); resp.StatusCode != 301 || !strings.HasPrefix(loc, "https://") || !strings.HasSuffix(loc, "/videos/1?token=SECRET-REDIRECT") {
			t.Errorf("plain HTTP: %d, Location %q; want 301 to the same path and query over https", resp.StatusCode, loc)
		}
	})

	// Each event comes through before the next is posted, and both
	// streams outlive a silence longer than nginx's read timeout.
	sse := openSSEWith(t, p.client, fmt.Sprintf("%s/api/v1/videos/%d/stream?ticket=%s", p.HTTPS, v.ID, ticket), "", nil)
	ws, resp, err := (&websocket.Dialer{TLSClientConfig: p.tls.Clone(), HandshakeTimeout: 5 * time.Second}).
		Dial(fmt.Sprintf("wss%s/api/v1/videos/%d/ws?ticket=%s", strings.TrimPrefix(p.HTTPS, "https"), v.ID, ticket), nil)
	if err != nil {
		t.Fatalf("WebSocket through nginx: %v (%v)", err, resp)
	}
	// Read all along, as a browser does: pongs go out only while the
	// client reads, and the server drops a peer that sends none.
	wsEvents := make(chan event, stephubSteps)
	var wsErr error // why reading stopped; read once wsEvents is closed
	go func() {
		defer close(wsEvents)
		for {
			var ev event
			_, msg, err := ws.ReadMessage()
			if err == nil {
				err = json.Unmarshal(msg, &ev)
			}
			if err != nil {
				wsErr = err
				return
			}
			wsEvents <- ev
		}
	}()
	defer func() {
		ws.Close()
		for range wsEvents {
		}
	}()
	for n := 1; n <= 3; n++ {
		if n == 3 {
			time.Sleep(2 * nginxTimeout)
		}
		postWorkerStep(t, s, v.ID, workerStep(n))
		if ev := nextWithin(t, sse, 5*time.Second); ev.Step != n {
			t.Fatalf("SSE through nginx: step %d; want %d", ev.Step, n)
		}
		select {
		case ev, ok := <-wsEvents:
			if !ok || ev.Step != n {
				t.Fatalf("WebSocket through nginx: step %d (open: %v); want step %d", ev.Step, ok, n)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("WebSocket through nginx: no step %d within 5s", n)
		}
	}
	postWorkerJob(t, s, v.ID, 0, 4, stephubSteps)
	sse.readAll(t)
	rest := 0
	for range wsEvents {
		rest++
	}
	var ce *websocket.CloseError
	if !errors.As(wsErr, &ce) || ce.Code != websocket.CloseNormalClosure || rest != stephubSteps-3 {
		t.Errorf("WebSocket through nginx ended with %v after %d more events; want 1000 after %d", wsErr, rest, stephubSteps-3)
	}

	// Credentials in queries stay out of the access log.
	for _, path := range []string{"/api/v1/users/me?token=SECRET-TOKEN", fmt.Sprintf("/api/v1/videos/%d/stream?ticket=SECRET-TICKET", v.ID)} {
		if resp, body := callWith(t, p.client, "GET", p.HTTPS+path, "", nil, nil); resp.StatusCode != 401 {
			t.Errorf("GET %s through nginx: %d %s; want 401", path, resp.StatusCode, body)
		}
	}
	wantLogged := []string{"/api/v1/users/me", fmt.Sprintf("/api/v1/videos/%d/stream", v.ID), fmt.Sprintf("/api/v1/videos/%d/ws", v.ID), "/videos/1"}
	log := p.waitForLog(t, wantLogged)
	for _, secret := range []string{"SECRET", ticket, "?"} {
		if strings.Contains(log, secret) {
			t.Errorf("the access log holds %q:\n%s", secret, log)
		}
	}
}

// nextWithin returns the stream's next event, failing the test if none
// comes within d: nginx holding events back until the stream ends would.
func nextWithin(t *testing.T, st *sseStream, d time.Duration) event {
	t.Helper()
	timer := time.AfterFunc(d, st.Close)
	defer timer.Stop()
	_, ev, err := st.next(t)
	if err != nil {
		t.Fatalf("no event within %v: %v", d, err)
	}
	return ev
}

// startNginx runs nginx on conf, the example's text, as a child process
// proxying to upstream (host:port); it is stopped at the end of the test.
func startNginx(t *testing.T, conf, upstream string) *nginxProxy {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		t.Fatalf("%s is missing (apt-get install nginx; .ci/run does): %v", nginxPath, err)
	}
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	httpsPort, httpPort := freePort(t), freePort(t)
	p := &nginxProxy{
		HTTPS:     fmt.Sprintf("https://127.0.0.1:%d", httpsPort),
		HTTP:      fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		accessLog: filepath.Join(dir, "access.log"),
		tls:       &tls.Config{RootCAs: pool},
	}
	p.client = &http.Client{Transport: &http.Transport{TLSClientConfig: p.tls.Clone(), ForceAttemptHTTP2: true}}
	t.Cleanup(p.client.CloseIdleConnections)
	for _, r := range []struct{ old, new string }{
		{"server 127.0.0.1:8000;", "server " + upstream + ";"},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort)},
		{"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", httpsPort)},
		{"/var/log/nginx/stephub.access.log", p.accessLog},
		{"/etc/ssl/stephub/fullchain.pem", certFile},
		{"/etc/ssl/stephub/privkey.pem", keyFile},
	} {
		if !strings.Contains(conf, r.old) {
			t.Fatalf("%s has no %q to replace", nginxExample, r.old)
		}
		conf = strings.ReplaceAll(conf, r.old, r.new)
	}
	conf = proxyTimeout.ReplaceAllString(conf, fmt.Sprintf("$1 %ds;", int(nginxTimeout.Seconds())))
	if err := os.WriteFile(filepath.Join(dir, "stephub.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The main file a Debian nginx would have, cut to what the example
	// needs, in the test's folder. Workers run as the user that starts
	// the test, root in CI, so they may write the folder.
	main := fmt.Sprintf(`pid %[1]s/nginx.pid;
events {}
http {
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/stephub.conf;
}
`, dir)
	if os.Geteuid() == 0 {
		main = "user root;\n" + main
	}
	mainFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainFile, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir, "-c", mainFile, "-e", filepath.Join(dir, "error.log")}
	if out, err := exec.Command(nginxPath, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t on the example: %v\n%s", err, out)
	}
	cmd := exec.Command(nginxPath, append(args, "-g", "daemon off;")...)
	out := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("nginx did not stop within 10s")
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", strings.TrimPrefix(p.HTTPS, "https://")); err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-done:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s%s", err, out.String(), errLog)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening after 5s:\n%s", out.String())
		}
	}
}

// waitForLog returns the access log once it names every path in want;
// nginx writes a request's line when the request ends.
func (p *nginxProxy) waitForLog(t *testing.T, want []string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(p.accessLog)
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(data), " "+w+" ") {
				missing = w
				break
			}
		}
		if missing == "" {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log does not name %s:\n%s", missing, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
