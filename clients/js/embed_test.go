package jsclient_test

import (
	"io/fs"
	"regexp"
	"testing"

	jsclient "github.com/stephub/stephub/clients/js"
)

// imports matches the relative imports and re-exports of a module as tsc
// writes them.
var imports = regexp.MustCompile(`(?m)^(?:import|export)\b[^"]*?from\s+"\./([^"]+)"`)

// TestModulesResolve checks that the entry is there and that every module
// it reaches imports only modules that FS holds, so that a browser loading
// Entry from where FS is served gets all of them.
func TestModulesResolve(t *testing.T) {
	fsys := jsclient.FS()
	seen := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Errorf("a module imports %s: %v", name, err)
			return
		}
		for _, m := range imports.FindAllSubmatch(data, -1) {
			visit(string(m[1]))
		}
	}
	visit(jsclient.Entry)
	for _, want := range []string{"index.js", "watch.js", "sse.js", "backoff.js", "errors.js"} {
		if !seen[want] {
			t.Errorf("%s is not reached from %s", want, jsclient.Entry)
		}
	}
	// Nothing that imports a bare name (react) is served to browsers.
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err == nil && regexp.MustCompile(`(?m)^import\b[^"]*?from\s+"[^./]`).Match(data) {
			t.Errorf("%s imports a bare module name, which a browser cannot load", name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
