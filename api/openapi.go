package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the API's OpenAPI document, as written. The tests hold it
// to the routes (openapi_test.go) and to the server's real answers
// (cmd/stephub/openapi_test.go).
//
//go:embed openapi.yaml
var openAPIYAML []byte

// handleOpenAPI serves the document as JSON, which every OpenAPI tool
// reads. It is converted when the server is built, so that a document
// that does not convert fails at start-up, not at the first request.
func handleOpenAPI() http.Handler {
	doc, err := yamlToJSON(openAPIYAML)
	if err != nil {
		// The document is embedded: a failure is a broken build, which
		// the tests catch first.
		panic(fmt.Sprintf("api: openapi.yaml: %v", err))
	}
	sum := sha256.Sum256(doc)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(doc))
	})
}

// yamlToJSON converts a YAML document to JSON, keeping the order of keys,
// so that the JSON reads as the YAML does (Swagger UI lists the paths in
// their order).
func yamlToJSON(data []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	return appendJSON(nil, &root)
}

func appendJSON(b []byte, n *yaml.Node) ([]byte, error) {
	var err error
	switch n.Kind {
	case yaml.DocumentNode:
		return appendJSON(b, n.Content[0])
	case yaml.AliasNode:
		return appendJSON(b, n.Alias)
	case yaml.MappingNode:
		b = append(b, '{')
		for i := 0; i < len(n.Content); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			// Keys are strings in JSON, whatever YAML makes of them
			// (a status code such as 200 is an integer there).
			if b, err = appendValue(b, n.Content[i].Value); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendJSON(b, n.Content[i+1]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, item := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, item); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return appendValue(b, v)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

func appendValue(b []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}
