// Package web holds the files the browser gets, embedded in the binary so
// that one file is the whole deployment: the dashboard page and the mock
// video that completed mock jobs point at.
//
// Handler serves them at the paths the contract fixes; FS exposes the same
// files for anyone who wants to mount them differently.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"time"
)

// The embedded tree is the one package-level variable: go:embed only fills
// package-level variables, and it is read-only.
//
//go:embed static
var static embed.FS

// Paths of the files in FS.
const (
	// Index is the dashboard page.
	Index = "index.html"
	// MockVideo is a 5-second VP9/Opus MP4 (about 100 KB) that Debian's
	// Chromium, which lacks H.264, plays too. gen-video.sh rebuilds it.
	MockVideo = "mock-video.mp4"
)

// MockVideoURL is where the contract puts MockVideo, and what a completed
// mock job's video_url says.
const MockVideoURL = "/uploads/videos/mock-video.mp4"

// FS returns the browser's files, rooted so that Index and MockVideo are at
// its top. It is read-only and safe for concurrent use.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is a
		// constant that the embed directive above already checked.
		panic(err)
	}
	return sub
}

// Handler serves MockVideo at MockVideoURL and the dashboard page at every
// other path: the router decides which paths reach it (the contract's GET /
// and GET /videos/{id}), and the page itself reads the video id from the
// address. It answers GET and HEAD, honours Range requests so that browsers
// can seek in the video, and is safe for concurrent use.
func Handler() http.Handler {
	page := load(Index, "text/html; charset=utf-8")
	// Go's MIME table has no .mp4, and the system's may lack it too.
	video := load(MockVideo, "video/mp4")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := page
		if r.URL.Path == MockVideoURL {
			f = video
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		// The page must pick up a new release at once; the ETag makes
		// that check a 304 when nothing changed.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent rather than ServeFileFS: the latter redirects any
		// path ending in /index.html, and here every path gets a file.
		// Embedded files have no modification time; the ETag stands in.
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
	})
}

// file is one embedded file with the headers it is served with.
type file struct {
	name, contentType, etag string
	data                    []byte
}

// load reads name from FS. The embed directive and TestFSHoldsTheFiles
// guarantee that it exists, so a failure is a broken build.
func load(name, contentType string) file {
	data, err := fs.ReadFile(FS(), name)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(data)
	return file{
		name:        name,
		contentType: contentType,
		etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
		data:        data,
	}
}
