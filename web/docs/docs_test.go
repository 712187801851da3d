package docs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stephub/stephub/web/docs"
)

// TestVendoredVersionIsPinned checks that swagger-ui/ holds the version of
// swagger-ui-dist that tools/openapi pins, so that vendor.sh --check and
// the README speak of the files served.
func TestVendoredVersionIsPinned(t *testing.T) {
	data, err := os.ReadFile("../../tools/openapi/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatal(err)
	}
	pinned := pkg.DevDependencies["swagger-ui-dist"]
	bundle, err := os.ReadFile("swagger-ui/swagger-ui-bundle.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`PACKAGE_VERSION:"([^"]+)"`).FindSubmatch(bundle)
	if m == nil || string(m[1]) != pinned {
		t.Errorf("swagger-ui-bundle.js is version %q; tools/openapi/package.json pins %q: run web/docs/vendor.sh", m, pinned)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("swagger-ui-dist "+pinned)) {
		t.Errorf("README.md does not name swagger-ui-dist %s", pinned)
	}
}

func get(t *testing.T, srv *httptest.Server, path string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// A transport of its own: the default one would ask for gzip itself
	// and hide the encoding.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(docs.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/docs", "text/html; charset=utf-8", `<script src="/docs/init.js">`},
		{"/docs/", "text/html; charset=utf-8", `<script src="/docs/init.js">`},
		{"/docs/init.js", "text/javascript; charset=utf-8", `url: "/openapi.json"`},
		{"/docs/docs.css", "text/css; charset=utf-8", "box-sizing"},
		{"/docs/swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"},
		{"/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "SwaggerUIBundle"},
		{"/docs/LICENSE", "text/plain; charset=utf-8", "Apache License"},
		{"/docs/NOTICE", "text/plain; charset=utf-8", "SmartBear"},
	} {
		resp, body := get(t, srv, tc.path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.contentType {
			t.Errorf("GET %s: %d %q; want 200 %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contentType)
		}
		if !bytes.Contains(body, []byte(tc.contains)) {
			t.Errorf("GET %s: the body lacks %q", tc.path, tc.contains)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy %q; want scripts from 'self' only", tc.path, csp)
		}
	}
	for _, path := range []string{"/docs/index.css", "/docs/swagger-ui-bundle.js.map", "/docs/../web.go", "/docs/static/init.js"} {
		if resp, _ := get(t, srv, path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d; want 404", path, resp.StatusCode)
		}
	}
}

// TestHandlerGzips checks that the bundle goes gzipped to clients that
// take it, as the same bytes, and whole to those that do not.
func TestHandlerGzips(t *testing.T) {
	srv := httptest.NewServer(docs.Handler())
	defer srv.Close()
	plain, whole := get(t, srv, "/docs/swagger-ui-bundle.js", nil)
	if plain.Header.Get("Content-Encoding") != "" {
		t.Errorf("without Accept-Encoding: Content-Encoding %q; want none", plain.Header.Get("Content-Encoding"))
	}
	for _, accept := range []string{"gzip", "br, gzip;q=0.5", "*"} {
		resp, body := get(t, srv, "/docs/swagger-ui-bundle.js", map[string]string{"Accept-Encoding": accept})
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == plain.Header.Get("ETag") {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, ETag %s; want gzip with an ETag of its own", accept, resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"))
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, whole) {
			t.Errorf("Accept-Encoding %q: the gzipped body is not the file (%v)", accept, err)
		}
	}
	for _, accept := range []string{"br", "gzip;q=0", "identity"} {
		if resp, _ := get(t, srv, "/docs/swagger-ui-bundle.js", map[string]string{"Accept-Encoding": accept}); resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q; want none", accept, resp.Header.Get("Content-Encoding"))
		}
	}
}
