package web_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stephub/stephub"
	jsclient "github.com/stephub/stephub/clients/js"
	"github.com/stephub/stephub/web"
)

// files is everything FS holds. Whatever is in FS is served, so a new file
// should be a deliberate change to this list.
var files = []string{
	"api.js",
	"app.js",
	"dom.js",
	"feed.js",
	"format.js",
	"generate-form.js",
	"icon.svg",
	web.Index,
	web.MockVideo,
	"session.js",
	"stream-worker.js",
	"streams.js",
	"style.css",
	"trial-city.svg",
	"trial-forest.svg",
	"trial-mountains.svg",
	"trial-sunset.svg",
	"video-list.js",
	"watch-view.js",
}

func TestFSHoldsTheFiles(t *testing.T) {
	if err := fstest.TestFS(web.FS(), files...); err != nil {
		t.Fatal(err)
	}
}

// textFiles returns the name and content of every file the browser parses
// as text.
func textFiles(t *testing.T) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	for _, name := range files {
		switch path.Ext(name) {
		case ".html", ".js", ".css", ".svg":
			data, err := fs.ReadFile(web.FS(), name)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = data
		}
	}
	return out
}

func TestIndexIsHTML5(t *testing.T) {
	page, err := fs.ReadFile(web.FS(), web.Index)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Errorf("index.html starts with %q; want the HTML5 doctype", page[:min(len(page), 20)])
	}
}

func TestFilesAreSelfContained(t *testing.T) {
	// No external resources: the dashboard must work offline and leak no
	// visit (or token) to a third party.
	external := []string{`src="http`, `href="http`, `src="//`, `href="//`, "@import", "url(http", "url(//",
		`from "http`, `import("http`, `fetch("http`}
	for name, data := range textFiles(t) {
		for _, s := range external {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s loads an external resource (%s)", name, s)
			}
		}
	}
}

// references finds what a file points at: attributes in HTML, imports and
// worker URLs in modules.
var references = []*regexp.Regexp{
	regexp.MustCompile(`(?:src|href|value)="(/[^"]*)"`),
	regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^"]*?from\s+"(\./[^"]+)"`),
	regexp.MustCompile(`new URL\("(\./[^"]+)", import\.meta\.url\)`),
}

func TestReferencesResolve(t *testing.T) {
	served := make(map[string]bool)
	for _, name := range files {
		served[web.AssetPrefix+name] = true
		served["./"+name] = true
	}
	// The client's modules, under ClientDir.
	for _, name := range clientFiles(t) {
		served["./"+web.ClientDir+name] = true
	}
	// Pages and the video, which the router sends to Handler by their
	// own routes.
	served["/"], served[stephub.MockVideoURL] = true, true

	found := 0
	for name, data := range textFiles(t) {
		for _, re := range references {
			for _, m := range re.FindAllSubmatch(data, -1) {
				found++
				if ref := string(m[1]); !served[ref] {
					t.Errorf("%s refers to %s, which is not served", name, ref)
				}
			}
		}
	}
	if found < 20 {
		t.Errorf("found %d references; the patterns no longer match the files", found)
	}
}

func TestMockVideoIsSmallMP4(t *testing.T) {
	video, err := fs.ReadFile(web.FS(), web.MockVideo)
	if err != nil {
		t.Fatal(err)
	}
	if len(video) == 0 || len(video) > 150<<10 {
		t.Errorf("video size: got %d bytes; want 1..%d", len(video), 150<<10)
	}
	// An MP4 file opens with its ftyp box: a 4-byte big-endian size, then
	// the type "ftyp".
	if len(video) < 8 || string(video[4:8]) != "ftyp" {
		t.Fatalf("video does not start with an ftyp box: % x", video[:min(len(video), 8)])
	}
	// faststart puts moov (the index) right after ftyp, so playback can
	// begin before the whole file has arrived.
	ftypSize := int(binary.BigEndian.Uint32(video[:4]))
	if len(video) < ftypSize+8 || string(video[ftypSize+4:ftypSize+8]) != "moov" {
		t.Errorf("box after ftyp is not moov: the file lost -movflags +faststart")
	}
	// VP9 (sample entry vp09), not H.264 (avc1), which Debian's Chromium
	// cannot decode.
	if !bytes.Contains(video, []byte("vp09")) || bytes.Contains(video, []byte("avc1")) {
		t.Errorf("video is not VP9: want a vp09 sample entry and no avc1")
	}
}

func TestFSHasNothingElse(t *testing.T) {
	var names []string
	err := fs.WalkDir(web.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(files)
	slices.Sort(want)
	if got, want := strings.Join(names, ","), strings.Join(want, ","); got != want {
		t.Errorf("files:\ngot  %s\nwant %s", got, want)
	}
}

func TestHandlerServesPageAndVideo(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	video, err := fs.ReadFile(web.FS(), web.MockVideo)
	if err != nil {
		t.Fatal(err)
	}

	// The dashboard page, at both routes the contract gives it, and at a
	// path ending in index.html, which must not redirect.
	for _, path := range []string{"/", "/videos/42", "/videos/index.html"} {
		resp, body := get(t, srv, path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d; want 200", path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s Content-Type: got %q; want text/html; charset=utf-8", path, ct)
		}
		if !bytes.Contains(body, []byte("<title>stephub</title>")) {
			t.Errorf("GET %s: body is not the dashboard page", path)
		}
		// The page arrives with ?token=…: no request may pass the
		// address on, and nothing but this origin may run in it.
		if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("GET %s Referrer-Policy: got %q; want no-referrer", path, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") {
			t.Errorf("GET %s Content-Security-Policy: got %q; want default-src 'self'", path, got)
		}
	}

	// The whole video, then a range of it, then a revalidation.
	resp, body := get(t, srv, stephub.MockVideoURL)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" || !bytes.Equal(body, video) {
		t.Errorf("GET video: got %d %q, %d bytes; want 200 video/mp4, %d bytes",
			resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(video))
	}
	resp, body = get(t, srv, stephub.MockVideoURL, "Range", "bytes=4-7")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "ftyp" {
		t.Errorf("GET video bytes 4-7: got %d %q; want 206 \"ftyp\"", resp.StatusCode, body)
	}
	// Thousands of one-byte ranges would be answered with a part header
	// each, many times the file: the file is served once instead.
	ranges := make([]string, 2000)
	for i := range ranges {
		ranges[i] = fmt.Sprintf("%d-%d", 2*i, 2*i)
	}
	resp, body = get(t, srv, stephub.MockVideoURL, "Range", "bytes="+strings.Join(ranges, ","))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, video) {
		t.Errorf("GET video with 2000 ranges: got %d, %d bytes; want 200, the %d bytes of the video", resp.StatusCode, len(body), len(video))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("video has no ETag")
	}
	resp, _ = get(t, srv, stephub.MockVideoURL, "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET video If-None-Match: got %d; want 304", resp.StatusCode)
	}
}

func TestHandlerServesEveryFile(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	wantType := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
		".mp4":  "video/mp4",
	}
	for _, name := range files {
		want, err := fs.ReadFile(web.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, srv, web.AssetPrefix+name)
		ct, ok := wantType[path.Ext(name)]
		if !ok {
			t.Errorf("%s: no content type known for %s files", name, path.Ext(name))
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct || !bytes.Equal(body, want) {
			t.Errorf("GET %s%s: got %d %q, %d bytes; want 200 %q, %d bytes",
				web.AssetPrefix, name, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), ct, len(want))
		}
	}
}

// clientFiles returns the names of the client's modules.
func clientFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(jsclient.FS(), "*.js")
	if err != nil || len(names) == 0 {
		t.Fatalf("the client has no modules (%v): build clients/js", err)
	}
	return names
}

// TestHandlerServesTheClient serves each module of the JavaScript client
// under ClientDir, as JavaScript, with the dashboard's headers; the page's
// feed imports it from there.
func TestHandlerServesTheClient(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, name := range clientFiles(t) {
		want, err := fs.ReadFile(jsclient.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, srv, web.AssetPrefix+web.ClientDir+name)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || !bytes.Equal(body, want) {
			t.Errorf("GET %s%s%s: got %d %q, %d bytes; want 200 text/javascript, %d bytes",
				web.AssetPrefix, web.ClientDir, name, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(want))
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", name, got)
		}
	}
	feed, err := fs.ReadFile(web.FS(), "feed.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(feed, []byte(`from "./`+web.ClientDir+jsclient.Entry+`"`)) {
		t.Errorf("feed.js does not import the client from ./%s%s", web.ClientDir, jsclient.Entry)
	}
	// The React hook imports react, which no page here has.
	if resp, _ := get(t, srv, web.AssetPrefix+web.ClientDir+"react/index.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET the React hook: %d; want 404", resp.StatusCode)
	}
}

// get fetches path from srv with the given header names and values, and
// returns the response and its body.
func get(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
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
