// Package jsclient holds the compiled JavaScript client of this folder
// (@stephub/client, written in TypeScript under src/): its ES modules,
// embedded so that the dashboard runs the very code that other front ends
// install from npm, and the Go build needs no node.
//
// dist/ is tsc's output, committed; `npm test` fails while it is not what
// src/ compiles to. The React hook (dist/react/) imports react by its bare
// name, which a browser cannot resolve without a bundler, and is left out.
package jsclient

import (
	"embed"
	"io/fs"
)

// The modules are the package's one variable: go:embed fills only
// package-level variables, and it is read-only.
//
//go:embed dist/*.js
var dist embed.FS

// Entry is the module that exports watchVideo, createClient and the rest;
// the other files of FS are the modules it imports, by relative paths.
const Entry = "index.js"

// FS returns the client's modules at its top: index.js, watch.js and so
// on. It is read-only and safe for concurrent use.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "dist" is a constant
		// that the embed directive above already checked.
		panic(err)
	}
	return sub
}
