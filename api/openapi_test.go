package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stephub/stephub"
	"github.com/stephub/stephub/metrics"
	"go.yaml.in/yaml/v3"
)

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// routeParam matches httprouter's wildcards, :id and *file.
var routeParam = regexp.MustCompile(`[:*](\w+)`)

// TestOpenAPIDescribesEveryRoute holds the document to the router: every
// route registered is documented, and every documented operation is
// registered. HEAD is described once for all GET routes, so each HEAD
// route must have its GET twin instead.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	s := NewServer(Config{}, Deps{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(prometheus.NewRegistry()),
	})
	registered := make(map[Route]bool)
	for _, r := range s.Routes() {
		registered[Route{r.Method, routeParam.ReplaceAllString(r.Pattern, "{$1}")}] = true
	}
	if len(registered) == 0 {
		t.Fatal("the server lists no routes")
	}
	for r := range registered {
		if r.Method == http.MethodHead {
			if !registered[Route{http.MethodGet, r.Pattern}] {
				t.Errorf("HEAD %s has no GET twin: the document describes HEAD only as that of GET routes", r.Pattern)
			}
			continue
		}
		item := doc.Paths.Value(r.Pattern)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is a route of the server but not in openapi.yaml", r.Method, r.Pattern)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !registered[Route{method, path}] {
				t.Errorf("%s %s is in openapi.yaml but not a route of the server", method, path)
			}
		}
	}
}

// errorCodes returns the codes an error response's schema allows, or nil
// for a response that is not an error.
func errorCodes(resp *openapi3.Response) []string {
	media := resp.Content.Get("application/json")
	if media == nil || media.Schema == nil {
		return nil
	}
	errProp := media.Schema.Value.Properties["error"]
	if errProp == nil || errProp.Value.Properties["code"] == nil {
		return nil
	}
	code := errProp.Value.Properties["code"].Value
	var codes []string
	for _, c := range code.Enum {
		codes = append(codes, c.(string))
	}
	return codes
}

// TestOpenAPIErrorCodes holds the document's error codes to errors.go:
// ErrorCode lists exactly the codes statusOf maps, each error response of
// the API lists its codes, and only codes whose status is its own.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for _, c := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		documented = append(documented, c.(string))
	}
	slices.Sort(documented)
	if known := slices.Sorted(maps.Keys(statusOf)); !slices.Equal(documented, known) {
		t.Errorf("ErrorCode lists %v; the server's codes (statusOf) are %v", documented, known)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				codes := errorCodes(ref.Value)
				if status[0] >= '4' && strings.HasPrefix(path, "/api/") && len(codes) == 0 {
					t.Errorf("%s %s %s: an error response of the API without its codes", method, path, status)
				}
				for _, code := range codes {
					got := strconv.Itoa(statusOf[code])
					if got != status && !(strings.HasSuffix(status, "XX") && got[0] == status[0]) {
						t.Errorf("%s %s: code %q is listed under %s; the server answers it with %s", method, path, code, status, got)
					}
				}
			}
		}
	}
}

// TestOpenAPIRequestBodies holds the request schemas to the types the
// handlers decode into and to their limits.
func TestOpenAPIRequestBodies(t *testing.T) {
	doc := loadOpenAPI(t)
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	for name, dst := range map[string]any{
		"GenerateRequest": &generateRequest{},
		"WorkerEvent":     &workerEventRequest{},
	} {
		s := schema(name)
		if got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(namesOf(dst))); !slices.Equal(got, want) {
			t.Errorf("%s has the fields %v; the handler takes %v", name, got, want)
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("%s allows other fields; the server refuses them", name)
		}
	}
	limits := []struct {
		what      string
		got, want uint64
	}{
		{"GenerateRequest.prompt minLength", schema("GenerateRequest").Properties["prompt"].Value.MinLength, minPromptChars},
		{"GenerateRequest.prompt maxLength", *schema("GenerateRequest").Properties["prompt"].Value.MaxLength, maxPromptChars},
		{"GenerateRequest.reference_image_url maxLength", *schema("GenerateRequest").Properties["reference_image_url"].Value.MaxLength, maxURLChars},
		{"WorkerEvent.message maxLength", *schema("WorkerEvent").Properties["message"].Value.MaxLength, maxMessageChars},
		{"WorkerEvent.error maxLength", *schema("WorkerEvent").Properties["error"].Value.MaxLength, maxMessageChars},
		{"WorkerEvent.video_url maxLength", *schema("WorkerEvent").Properties["video_url"].Value.MaxLength, maxURLChars},
		{"WorkerEvent.step maximum", uint64(*schema("WorkerEvent").Properties["step"].Value.Max), stephub.TotalSteps + 1},
		{"AdminUserUpdate.credits maximum", uint64(*schema("AdminUserUpdate").Properties["credits"].Value.Max), uint64(stephub.MaxCredits)},
		{"User.id maxLength", *schema("User").Properties["id"].Value.MaxLength, maxUserIDChars},
		{"User.email maxLength", *schema("User").Properties["email"].Value.MaxLength, maxEmailChars},
	}
	for _, l := range limits {
		if l.got != l.want {
			t.Errorf("%s = %d; the server's limit is %d", l.what, l.got, l.want)
		}
	}
}

// TestOpenAPIJSONIsTheYAML checks that /openapi.json says what
// openapi.yaml says, in the same order.
func TestOpenAPIJSONIsTheYAML(t *testing.T) {
	got, err := yamlToJSON(openAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML any
	if err := yaml.Unmarshal(openAPIYAML, &fromYAML); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatalf("openapi.yaml does not encode as JSON: %v", err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("the converted document is not JSON: %v", err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("the JSON document differs from openapi.yaml")
	}
	paths := regexp.MustCompile(`(?m)^  (/\S*):$`).FindAllSubmatch(openAPIYAML, -1)
	last := -1
	for _, p := range paths {
		i := strings.Index(string(got), `"`+string(p[1])+`":{`)
		if i < last {
			t.Errorf("path %s is out of the YAML's order in the JSON", p[1])
		}
		last = i
	}
}
