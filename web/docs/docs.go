// Package docs serves the interactive reference of stephub's API: Swagger UI,
// vendored from the npm package swagger-ui-dist (see vendor.sh and
// README.md), and a page and start-up script of our own that point it at
// the server's /openapi.json. Everything is embedded, so the reference
// works offline and loads nothing from another origin.
package docs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The embedded files: ours in static/, Swagger UI's in swagger-ui/.
//
//go:embed static swagger-ui
var files embed.FS

// Prefix is the path of the page; each file is served under it by its
// name: /docs/swagger-ui-bundle.js, /docs/init.js.
const Prefix = "/docs"

// index is the page, in static/.
const index = "index.html"

// contentTypes are the types of the files served, by extension; the
// licence files of swagger-ui/ have none and are plain text.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
	"":      "text/plain; charset=utf-8",
}

// contentSecurityPolicy is the dashboard's policy with what Swagger UI
// needs: style attributes and elements that it writes itself
// ('unsafe-inline' for styles only; scripts stay 'self'), and the data:
// images of its style sheet. connect-src 'self' lets "Try it out" reach
// this server and no other.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"

// minGzipBytes is the size from which a file is sent gzipped to clients
// that take it: the bundle shrinks from 1.7 MB to under 0.5 MB.
const minGzipBytes = 1 << 10

// Handler serves the page at Prefix and at Prefix+"/", and every embedded
// file at Prefix+"/"+name; any other name is a 404. It answers GET and
// HEAD, and is safe for concurrent use. Files are hashed, and large ones
// gzipped, on first request rather than at start-up, so that a server
// nobody reads the reference of pays nothing for it.
func Handler() http.Handler {
	byName := make(map[string]*file)
	for _, dir := range []string{"static", "swagger-ui"} {
		entries, err := fs.ReadDir(files, dir)
		if err != nil {
			// The embed directive above checked that both exist.
			panic(err)
		}
		for _, e := range entries {
			ct, ok := contentTypes[path.Ext(e.Name())]
			if !ok {
				panic("web/docs: " + e.Name() + " has no content type: add its extension to contentTypes")
			}
			byName[e.Name()] = &file{name: e.Name(), path: dir + "/" + e.Name(), contentType: ct}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Prefix), "/")
		if name == "" {
			name = index
		}
		f, ok := byName[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		v := f.load()
		data, etag := v.data, v.etag
		h := w.Header()
		if v.gzipped != nil {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r.Header.Get("Accept-Encoding")) {
				data, etag = v.gzipped, v.gzipETag
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", etag)
		// A new release is picked up at once; the ETag makes that check a
		// 304 when nothing changed.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(data))
	})
}

// file is one embedded file; load reads it once, on first use.
type file struct {
	name, path, contentType string
	once                    sync.Once
	v                       version
}

// version is what a file is served as.
type version struct {
	data, gzipped  []byte // gzipped is nil for small files
	etag, gzipETag string
}

func (f *file) load() *version {
	f.once.Do(func() {
		data, err := fs.ReadFile(files, f.path)
		if err != nil {
			panic(err) // embedded files can always be read
		}
		sum := sha256.Sum256(data)
		tag := hex.EncodeToString(sum[:16])
		f.v = version{data: data, etag: `"` + tag + `"`}
		if len(data) >= minGzipBytes {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level cannot fail
			zw.Write(data)
			zw.Close() // writes to a bytes.Buffer cannot fail
			f.v.gzipped, f.v.gzipETag = buf.Bytes(), `"`+tag+`-gz"`
		}
	})
	return &f.v
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip: the
// first coding that names it, or *, decides by its weight.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if c := strings.TrimSpace(coding); c != "gzip" && c != "*" {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		weight, err := strconv.ParseFloat(q, 64)
		return err == nil && weight > 0
	}
	return false
}
