package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// What serve does for browsers beyond the API: the sign-in link of dev mode
// and HTTPS with HTTP/2.

func TestSignInURL(t *testing.T) {
	tests := []struct {
		addr  string
		https bool
		want  string
	}{
		{"[::]:8000", false, "http://localhost:8000/?token=T"},
		{"0.0.0.0:8000", false, "http://localhost:8000/?token=T"},
		{":8000", false, "http://localhost:8000/?token=T"},
		{"127.0.0.1:9000", false, "http://127.0.0.1:9000/?token=T"},
		{"[::1]:8000", true, "https://[::1]:8000/?token=T"},
		{"example.com:443", true, "https://example.com:443/?token=T"},
	}
	for _, tt := range tests {
		if got := signInURL(tt.addr, tt.https, "T"); got != tt.want {
			t.Errorf("signInURL(%q, %v) = %q; want %q", tt.addr, tt.https, got, tt.want)
		}
	}
}

// TestServePrintsSignInLinkInDevModeOnly checks that the link is printed,
// on stdout, only with the dev secret; that it signs in as the dev user;
// and that the log never holds it.
func TestServePrintsSignInLinkInDevModeOnly(t *testing.T) {
	dev := startServer(t, testdb.SQLite(t), map[string]string{"JWT_SECRET": ""})
	link, err := url.Parse(signInLink(t, dev))
	if err != nil {
		t.Fatal(err)
	}
	token := link.Query().Get("token")
	claims, err := mustSigner(t, devJWTSecret).Verify(token)
	if err != nil || claims.Subject != devUser {
		t.Errorf("the link's token: %+v, %v; want one for %s signed with the dev secret", claims, err, devUser)
	}
	if strings.Contains(dev.logs.String(), token) {
		t.Error("the log holds the sign-in token")
	}
	if resp, body := call(t, "GET", dev.URL+"/api/v1/users/me", token, nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), devEmail) {
		t.Errorf("users/me with the link's token: %d %s", resp.StatusCode, body)
	}

	prod := startServer(t, testdb.SQLite(t), nil) // JWT_SECRET set
	if out := prod.out.String(); out != "" {
		t.Errorf("with JWT_SECRET set serve printed %q; want nothing", out)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "stephub test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(name, kind string, der []byte) {
		if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "PRIVATE KEY", keyDER)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLSSpeaksHTTP2 serves HTTPS with -tls-cert and -tls-key: HTTP/2
// comes with it, for the page and for event streams, so that front ends
// that open a stream per tab are not held to six connections.
func TestServeTLSSpeaksHTTP2(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	s := startServer(t, testdb.SQLite(t), map[string]string{"TLS_CERT": certFile, "TLS_KEY": keyFile, "STEP_DELAY": "0"})
	base := "https://" + strings.TrimPrefix(s.URL, "http://")
	client := tlsClient(pool, true)
	defer client.CloseIdleConnections()

	send := func(method, path, token, body string) (*http.Response, string) {
		t.Helper()
		resp, data := send(t, client, method, base+path, token, body)
		return resp, string(data)
	}

	resp, body := send("GET", "/", "", "")
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>stephub</title>") {
		t.Fatalf("GET / over TLS: %s %d; want HTTP/2 200 and the dashboard", resp.Proto, resp.StatusCode)
	}
	token := userToken(t, "secure")
	resp, body = send("POST", "/api/v1/videos/generate", token, `{"prompt": "A cat surfing a wave at sunset", "model": "sora-2"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate over TLS: %s %d %s", resp.Proto, resp.StatusCode, body)
	}
	v := decodeJSON[video](t, []byte(body))
	resp, body = send("GET", fmt.Sprintf("/api/v1/videos/%d/stream", v.ID), token, "")
	if resp.ProtoMajor != 2 || resp.Header.Get("Content-Type") != "text/event-stream" || strings.Count(body, "data: ") != 9 {
		t.Errorf("stream over TLS: %s %s, %d events; want HTTP/2 text/event-stream with 9 events:\n%s",
			resp.Proto, resp.Header.Get("Content-Type"), strings.Count(body, "data: "), body)
	}

	// A client without HTTP/2 gets the stream over HTTP/1.1 and TLS, on
	// the connection the stream takes over.
	client = tlsClient(pool, false)
	defer client.CloseIdleConnections()
	resp, body = send("GET", fmt.Sprintf("/api/v1/videos/%d/stream", v.ID), token, "")
	if resp.ProtoMajor != 1 || strings.Count(body, "data: ") != 9 || !strings.Contains(body, `"status":"completed"`) {
		t.Errorf("stream over HTTP/1.1 and TLS: %s, %d events; want HTTP/1.1 with 9 events:\n%s",
			resp.Proto, strings.Count(body, "data: "), body)
	}
}

func TestServeWantsBothTLSFiles(t *testing.T) {
	for _, args := range [][]string{{"-tls-cert", "cert.pem"}, {"-tls-key", "key.pem"}} {
		err := run(t.Context(), append([]string{"serve"}, args...), func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-tls-cert and -tls-key go together") {
			t.Errorf("serve %v: %v; want an error that both files are needed", args, err)
		}
	}
}
