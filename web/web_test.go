package web_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stephub/stephub/web"
)

func TestFSHoldsTheFiles(t *testing.T) {
	if err := fstest.TestFS(web.FS(), web.Index, web.MockVideo); err != nil {
		t.Fatal(err)
	}
}

func TestIndexIsSelfContained(t *testing.T) {
	page, err := fs.ReadFile(web.FS(), web.Index)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Errorf("index.html starts with %q; want the HTML5 doctype", page[:min(len(page), 20)])
	}
	// No external resources: the page must work offline and leak no
	// visit (or token) to a third party.
	for _, attr := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "@import", "url(http"} {
		if bytes.Contains(page, []byte(attr)) {
			t.Errorf("index.html loads an external resource (%s)", attr)
		}
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
	// Whatever is in FS may end up served; a stray file should be a
	// deliberate change to this list.
	if got, want := strings.Join(names, ","), web.Index+","+web.MockVideo; got != want {
		t.Errorf("files: got %s; want %s", got, want)
	}
}

func TestHandlerServesPageAndVideo(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	video, err := fs.ReadFile(web.FS(), web.MockVideo)
	if err != nil {
		t.Fatal(err)
	}

	get := func(path string, header ...string) (*http.Response, []byte) {
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

	// The dashboard page, at both routes the contract gives it, and at a
	// path ending in index.html, which must not redirect.
	for _, path := range []string{"/", "/videos/42", "/videos/index.html"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d; want 200", path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s Content-Type: got %q; want text/html; charset=utf-8", path, ct)
		}
		if !bytes.Contains(body, []byte("<title>stephub</title>")) {
			t.Errorf("GET %s: body is not the dashboard page", path)
		}
	}

	// The whole video, then a range of it, then a revalidation.
	resp, body := get(web.MockVideoURL)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" || !bytes.Equal(body, video) {
		t.Errorf("GET video: got %d %q, %d bytes; want 200 video/mp4, %d bytes",
			resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(video))
	}
	resp, body = get(web.MockVideoURL, "Range", "bytes=4-7")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "ftyp" {
		t.Errorf("GET video bytes 4-7: got %d %q; want 206 \"ftyp\"", resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("video has no ETag")
	}
	resp, _ = get(web.MockVideoURL, "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET video If-None-Match: got %d; want 304", resp.StatusCode)
	}
}
