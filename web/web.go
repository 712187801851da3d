// Package web holds the files the browser gets, embedded in the binary so
// that one file is the whole deployment: the dashboard (its page, ES
// modules, style sheet, shared worker and trial images) and the mock video
// that completed mock jobs point at. Nothing needs building: the modules
// are plain JavaScript that browsers load as they are.
//
// The dashboard streams with the JavaScript client of clients/js, whose
// modules Handler serves under ClientPrefix; they are that package's, so
// there is one implementation of stephub's stream protocol in the
// repository, and the dashboard runs what other front ends install.
//
// Handler serves them at the paths the contract fixes; FS exposes the same
// files for anyone who wants to mount them differently.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/stephub/stephub"
	jsclient "github.com/stephub/stephub/clients/js"
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

// AssetPrefix is the path under which Handler serves every file of FS by
// its name: /static/app.js, /static/trial-city.svg.
const AssetPrefix = "/static/"

// ClientDir is the folder of AssetPrefix under which Handler serves the
// modules of jsclient.FS: /static/client/index.js. The dashboard's modules
// import them as ./client/index.js.
const ClientDir = "client/"

// contentTypes are the types of the files Handler serves, by extension. Go's
// MIME table lacks .mp4 and the system's may differ, so it is spelt out;
// TestHandlerServesEveryFile keeps it complete.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".mp4":  "video/mp4",
}

// contentSecurityPolicy keeps the page, its modules and its worker to this
// origin: no inline script or style, no third party, no framing. 'self'
// covers the WebSocket to the same host.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"

// FS returns the browser's files, rooted so that Index, MockVideo and the
// dashboard's files are at its top. It is read-only and safe for concurrent
// use.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is a
		// constant that the embed directive above already checked.
		panic(err)
	}
	return sub
}

// Handler serves MockVideo at stephub.MockVideoURL, each file of FS at AssetPrefix
// followed by its name (404 for any other name there), and the dashboard
// page at every other path: the router decides which paths reach it (the
// contract's GET / and GET /videos/{id}), and the page itself reads the
// video id from the address. It answers GET and HEAD, honours single Range
// requests so that browsers can seek in the video (a multi-range request gets
// the whole file), and is safe for concurrent use.
func Handler() http.Handler {
	files := loadAll()
	page, video := files[Index], files[MockVideo]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := page
		if r.URL.Path == stephub.MockVideoURL {
			f = video
		} else if name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix); ok {
			asset, ok := files[name]
			if !ok {
				http.NotFound(w, r)
				return
			}
			f = asset
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		// The page must pick up a new release at once; the ETag makes
		// that check a 304 when nothing changed.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		// GET /?token=… carries a token until the page removes it; no
		// request may pass the address on.
		h.Set("Referrer-Policy", "no-referrer")
		if strings.Contains(r.Header.Get("Range"), ",") {
			// A multi-range request may ask for each byte many times
			// over; browsers ask for one range, and the whole file
			// answers any request.
			r = r.Clone(r.Context())
			r.Header.Del("Range")
		}
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

// loadAll reads every file of FS, and those of jsclient.FS under
// ClientDir. The embed directives guarantee that they can be read, and a
// file without a content type fails here, at start-up, so a failure is a
// broken build.
func loadAll() map[string]file {
	files := make(map[string]file)
	load(files, FS(), "")
	load(files, jsclient.FS(), ClientDir)
	return files
}

// load adds every file of fsys to files, under prefix followed by its name.
func load(files map[string]file, fsys fs.FS, prefix string) {
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		contentType, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("web: %s has no content type: add its extension to contentTypes", name)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		files[prefix+name] = file{
			name:        name,
			contentType: contentType,
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
			data:        data,
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
}
