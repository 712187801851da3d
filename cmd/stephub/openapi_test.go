package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/websocket"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
)

func init() {
	// kin-openapi decodes a body by its media type before it checks it
	// against the schema; these are the types the document names beyond
	// the ones it knows.
	for _, mt := range []string{"text/html", "text/javascript", "text/css", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
	}
	openapi3filter.RegisterBodyDecoder("video/mp4", openapi3filter.FileBodyDecoder)
}

// apiChecker holds a server's answers to the OpenAPI document it serves
// itself at /openapi.json. Its client checks every request that succeeds
// (the document must accept what the server accepts) and every answer:
// the status must be documented for the operation, and the headers and
// body must match what the document says of it. It is safe for concurrent
// use.
type apiChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	client *http.Client

	mu sync.Mutex
	// seen counts the answers checked, by "METHOD path status" of the
	// document.
	seen map[string]int
}

// newAPIChecker loads the document that the first server serves, with the
// servers as its own.
func newAPIChecker(t *testing.T, servers ...*testServer) *apiChecker {
	t.Helper()
	resp, data := call(t, "GET", servers[0].URL+"/openapi.json", "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, data)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatalf("loading /openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not a valid OpenAPI document: %v", err)
	}
	doc.Servers = nil
	for _, s := range servers {
		doc.Servers = append(doc.Servers, &openapi3.Server{URL: s.URL})
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	c := &apiChecker{t: t, doc: doc, router: router, seen: make(map[string]int)}
	c.client = &http.Client{Transport: c}
	return c
}

// RoundTrip sends the request and checks the answer, whose body it reads
// first, unless it is an event stream, which it checks up to the body.
func (c *apiChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		if reqBody, err = io.ReadAll(body); err != nil {
			return nil, err
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.check(req, reqBody, resp, nil, true)
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.check(req, reqBody, resp, body, false)
	return resp, nil
}

// call is the harness's call through the checking client.
func (c *apiChecker) call(method, url, token string, body any, header map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	return callWith(c.t, c.client, method, url, token, body, header)
}

// check holds one exchange to the document; body is nil for a stream,
// whose body is not read here.
func (c *apiChecker) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte, stream bool) {
	c.t.Helper()
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.Path, resp.StatusCode)
	// HEAD is described once, as GET without the body.
	asGET := req.Clone(context.Background())
	if req.Method == http.MethodHead {
		asGET.Method = http.MethodGet
		if len(body) > 0 {
			c.t.Errorf("%s: a HEAD answer with a body of %d bytes", what, len(body))
		}
	}
	route, params, err := c.router.FindRoute(asGET)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		c.checkNoOperation(what, req, resp, body)
		return
	case errors.Is(err, routers.ErrPathNotFound):
		c.checkError(what, resp, body, http.StatusNotFound, "not_found")
		return
	case err != nil:
		c.t.Errorf("%s: finding the operation: %v", what, err)
		return
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %s %d", route.Method, route.Path, resp.StatusCode)]++
	c.mu.Unlock()

	asGET.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{
		Request:    asGET,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if resp.StatusCode < 300 && req.Method != http.MethodHead {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s: the server took a request that the document refuses: %s\nrequest body: %.500s", what, brief(err), reqBody)
		}
	}
	excludeBody := stream || req.Method == http.MethodHead
	if excludeBody && resp.StatusCode != http.StatusNoContent {
		// The body is not read, but its media type must be documented.
		if ref := route.Operation.Responses.Status(resp.StatusCode); ref != nil && len(ref.Value.Content) > 0 &&
			ref.Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
			c.t.Errorf("%s: Content-Type %q is not documented", what, resp.Header.Get("Content-Type"))
		}
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   excludeBody,
			MultiError:            true,
		},
	})
	if err != nil {
		c.t.Errorf("%s: the answer breaks the document: %s\nbody: %.500s", what, brief(err), body)
	}
}

// checkNoOperation checks an answer to a method the path has no operation
// for, as the document's description says once for all paths: OPTIONS is
// 204 with Allow, any other method 405 method_not_allowed with Allow.
func (c *apiChecker) checkNoOperation(what string, req *http.Request, resp *http.Response, body []byte) {
	c.t.Helper()
	if resp.Header.Get("Allow") == "" {
		c.t.Errorf("%s: no Allow header", what)
	}
	if req.Method == http.MethodOptions {
		if resp.StatusCode != http.StatusNoContent {
			c.t.Errorf("%s: want 204", what)
		}
		return
	}
	c.checkError(what, resp, body, http.StatusMethodNotAllowed, "method_not_allowed")
}

// checkError checks an error answer outside any operation against the
// document's Error schema.
func (c *apiChecker) checkError(what string, resp *http.Response, body []byte, status int, code string) {
	c.t.Helper()
	if resp.StatusCode != status {
		c.t.Errorf("%s: want %d", what, status)
	}
	c.checkSchema(what, "Error", body)
	if !bytes.Contains(body, []byte(`"code":"`+code+`"`)) {
		c.t.Errorf("%s: body %s; want the code %s", what, body, code)
	}
}

// checkSchema checks a JSON value against a schema of the document's
// components.
func (c *apiChecker) checkSchema(what, schema string, data []byte) {
	c.t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		c.t.Errorf("%s: %q is not JSON: %v", what, data, err)
		return
	}
	if err := c.doc.Components.Schemas[schema].Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		c.t.Errorf("%s: %s breaks the %s schema: %s", what, data, schema, brief(err))
	}
}

// brief says what a validation error of kin-openapi found, without the
// schemas that its messages print in full.
func brief(err error) string {
	var multi openapi3.MultiError
	var resp *openapi3filter.ResponseError
	var req *openapi3filter.RequestError
	var schema *openapi3.SchemaError
	switch {
	case errors.As(err, &multi):
		parts := make([]string, len(multi))
		for i, e := range multi {
			parts[i] = brief(e)
		}
		return strings.Join(parts, "; ")
	case errors.As(err, &resp) && resp.Err != nil:
		return resp.Reason + ": " + brief(resp.Err)
	case errors.As(err, &req) && req.Err != nil:
		where := "request"
		switch {
		case req.Parameter != nil:
			where = req.Parameter.In + " parameter " + req.Parameter.Name
		case req.RequestBody != nil:
			where = "request body"
		}
		return where + ": " + brief(req.Err)
	case errors.As(err, &schema):
		return "at /" + strings.Join(schema.JSONPointer(), "/") + ": " + schema.Reason
	}
	return err.Error()
}

// readSSE reads an event stream to its end, or to its nth event when n is
// above 0, checking each data line against the Event schema. The caller
// closes the stream.
func (c *apiChecker) readSSE(what string, resp *http.Response, n int) []event {
	c.t.Helper()
	var events []event
	r := bufio.NewReader(resp.Body)
	for n == 0 || len(events) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.t.Errorf("%s: reading: %v", what, err)
			}
			break
		}
		if data, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "data: "); ok {
			c.checkSchema(what, "Event", []byte(data))
			events = append(events, decodeJSON[event](c.t, []byte(data)))
		}
	}
	return events
}

// dialWS opens a WebSocket at the path and query of the first server and
// checks the handshake's answer, a 101 or an error.
func (c *apiChecker) dialWS(s *testServer, pathAndQuery string, header http.Header) *websocket.Conn {
	c.t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+pathAndQuery, header)
	if resp == nil {
		c.t.Fatalf("dialing %s: %v", pathAndQuery, err)
	}
	req, err := http.NewRequest("GET", s.URL+pathAndQuery, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	c.check(req, nil, resp, body, false)
	if conn != nil {
		c.t.Cleanup(func() { conn.Close() })
	}
	return conn
}

// checkCoverage fails the test for any operation of the document that it
// did not exercise, and logs the documented answers it did not see.
func (c *apiChecker) checkCoverage() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var unseen []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			exercised := false
			for status := range op.Responses.Map() {
				if c.seen[method+" "+path+" "+status] > 0 {
					exercised = true
				} else {
					unseen = append(unseen, method+" "+path+" "+status)
				}
			}
			if !exercised {
				c.t.Errorf("%s %s: the test never exercised this operation", method, path)
			}
		}
	}
	slices.Sort(unseen)
	c.t.Logf("documented answers not provoked (5XX, 408 and the like): %s", strings.Join(unseen, ", "))
}

// TestOpenAPIResponses drives the API's flows through two real servers,
// one with the mock pipeline and one for workers, and checks every
// answer against the document the server serves: statuses, the headers
// that matter, bodies, error codes, and each SSE event and WebSocket
// frame against the Event schema.
func TestOpenAPIResponses(t *testing.T) {
	mock := startServer(t, testdb.SQLite(t), nil)
	ext := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "MAX_STREAMS_PER_USER": "1"})
	c := newAPIChecker(t, mock, ext)
	checkMockFlows(t, c, mock)
	checkWorkerFlows(t, c, ext)
	c.checkCoverage()
}

// checkMockFlows covers the documents, the dashboard, users, generating,
// listing, tickets, streams of finished jobs, sessions and the answers
// outside operations.
func checkMockFlows(t *testing.T, c *apiChecker, s *testServer) {
	alice, bob, carol := userToken(t, "oa-alice"), userToken(t, "oa-bob"), userToken(t, "oa-carol")
	api := s.URL + "/api/v1"
	want := func(what string, resp *http.Response, body []byte, status int, code string) {
		t.Helper()
		checkAnswer(t, what, resp, body, status, code)
	}

	for _, path := range []string{"/openapi.json", "/docs", "/docs/init.js", "/docs/swagger-ui.css", "/healthz", "/readyz", "/metrics",
		"/", "/videos/1?token=" + alice, "/static/app.js", "/static/icon.svg", stephub.MockVideoURL} {
		resp, body := c.call("GET", s.URL+path, "", nil, nil)
		want("GET "+path, resp, body, http.StatusOK, "")
		resp, body = c.call("HEAD", s.URL+path, "", nil, nil)
		want("HEAD "+path, resp, body, http.StatusOK, "")
	}
	resp, body := c.call("GET", s.URL+stephub.MockVideoURL, "", nil, map[string]string{"Range": "bytes=0-99"})
	want("a range of the video", resp, body, http.StatusPartialContent, "")
	for _, path := range []string{"/docs/nope.js", "/static/nope.js"} {
		resp, body = c.call("GET", s.URL+path, "", nil, nil)
		want("GET "+path, resp, body, http.StatusNotFound, "")
	}

	resp, body = c.call("GET", api+"/users/me", alice, nil, nil)
	want("users/me", resp, body, http.StatusOK, "")
	resp, body = c.call("GET", api+"/users/me?token="+alice, "", nil, nil)
	want("users/me with ?token=", resp, body, http.StatusOK, "")
	resp, body = c.call("GET", api+"/users/me", "", nil, nil)
	want("users/me without a token", resp, body, http.StatusUnauthorized, "unauthorized")
	resp, body = c.call("GET", api+"/users/me", "not-a-token", nil, nil)
	want("users/me with a bad token", resp, body, http.StatusUnauthorized, "unauthorized")

	good := map[string]any{"prompt": "A cat surfing a wave at sunset", "model": "sora-2", "reference_image_url": "https://example.com/cat.jpg"}
	resp, body = c.call("POST", api+"/videos/generate", alice, good, nil)
	want("generate", resp, body, http.StatusCreated, "")
	v := decodeJSON[video](t, body)
	for _, tc := range []struct {
		what   string
		token  string
		body   any
		header map[string]string
		status int
		code   string
	}{
		{"not JSON", alice, "{", nil, http.StatusBadRequest, "invalid_json"},
		{"no token", "", good, nil, http.StatusUnauthorized, "unauthorized"},
		{"over 64 KiB", alice, `{"prompt": "` + strings.Repeat("a", 70<<10) + `", "model": "sora-2"}`, nil, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"text/plain", alice, good, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"a short prompt", alice, map[string]any{"prompt": "short", "model": "sora-2"}, nil, http.StatusUnprocessableEntity, "validation_failed"},
		{"an unknown field", alice, map[string]any{"prompt": "A cat surfing a wave", "model": "sora-2", "staus": 1}, nil, http.StatusUnprocessableEntity, "validation_failed"},
	} {
		resp, body = c.call("POST", api+"/videos/generate", tc.token, tc.body, tc.header)
		want("generate with "+tc.what, resp, body, tc.status, tc.code)
	}

	// An admin gives carol credits for one video, then takes her
	// subscription away.
	carolURL := api + "/admin/users/oa-carol"
	resp, body = c.call("PUT", carolURL, testAdminToken, map[string]any{"credits": 150}, nil)
	want("admin put", resp, body, http.StatusOK, "")
	for _, tc := range []struct {
		what   string
		token  string
		body   any
		header map[string]string
		status int
		code   string
	}{
		{"a user's token", alice, map[string]any{"credits": 1}, nil, http.StatusUnauthorized, "unauthorized"},
		{"negative credits", testAdminToken, map[string]any{"credits": -1}, nil, http.StatusUnprocessableEntity, "validation_failed"},
		{"no field", testAdminToken, map[string]any{}, nil, http.StatusUnprocessableEntity, "validation_failed"},
		{"not JSON", testAdminToken, "credits", nil, http.StatusBadRequest, "invalid_json"},
		{"text/plain", testAdminToken, map[string]any{"credits": 1}, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"over 64 KiB", testAdminToken, `{"subscription_status": "` + strings.Repeat("a", 70<<10) + `"}`, nil, http.StatusRequestEntityTooLarge, "body_too_large"},
	} {
		resp, body = c.call("PUT", carolURL, tc.token, tc.body, tc.header)
		want("admin put with "+tc.what, resp, body, tc.status, tc.code)
	}
	resp, body = c.call("POST", api+"/videos/generate", carol, good, nil)
	want("carol's first generate", resp, body, http.StatusCreated, "")
	resp, body = c.call("POST", api+"/videos/generate", carol, good, nil)
	want("carol's second generate", resp, body, http.StatusPaymentRequired, "insufficient_credits")
	resp, body = c.call("PUT", carolURL, testAdminToken, map[string]any{"subscription_status": "inactive"}, nil)
	want("admin put inactive", resp, body, http.StatusOK, "")
	resp, body = c.call("POST", api+"/videos/generate", carol, good, nil)
	want("generate while inactive", resp, body, http.StatusForbidden, "subscription_inactive")

	// The job runs with no delay between steps; its stream, by ticket,
	// ends after the terminal event.
	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/ticket", api, v.ID), alice, nil, nil)
	want("ticket", resp, body, http.StatusOK, "")
	ticket := decodeJSON[struct{ Ticket string }](t, body).Ticket
	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/ticket", api, v.ID), bob, nil, nil)
	want("ticket for another's video", resp, body, http.StatusNotFound, "not_found")
	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/ticket?token=%s", api, v.ID, alice), "", nil, nil)
	want("ticket with ?token=", resp, body, http.StatusUnauthorized, "unauthorized")
	streamURL := fmt.Sprintf("%s/videos/%d/stream", api, v.ID)
	req, _ := http.NewRequest("GET", streamURL+"?ticket="+ticket, nil)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, "the stream", c.readSSE("the stream", resp, 0))
	resp.Body.Close()
	resp, body = c.call("GET", streamURL+"?token="+alice, "", nil, map[string]string{"Last-Event-ID": "9"})
	want("stream with everything seen", resp, body, http.StatusNoContent, "")
	resp, body = c.call("HEAD", streamURL+"?token="+alice, "", nil, nil)
	want("HEAD stream", resp, body, http.StatusOK, "")
	resp, body = c.call("GET", streamURL+"?token="+alice, "", nil, map[string]string{"Last-Event-ID": "+3"})
	want("stream with a bad Last-Event-ID", resp, body, http.StatusBadRequest, "bad_last_event_id")
	resp, body = c.call("GET", streamURL, "", nil, nil)
	want("stream without a credential", resp, body, http.StatusUnauthorized, "unauthorized")
	resp, body = c.call("GET", streamURL+"?token="+bob, "", nil, nil)
	want("stream of another's video", resp, body, http.StatusNotFound, "not_found")

	wsPath := fmt.Sprintf("/api/v1/videos/%d/ws", v.ID)
	conn := c.dialWS(s, wsPath+"?token="+alice+"&last_event_id=9", nil)
	if conn == nil {
		t.Fatal("the WebSocket of a finished video did not open")
	}
	if _, code := readWS(t, conn); code != websocket.CloseNormalClosure {
		t.Errorf("WebSocket with nothing left closed with %d; want 1000", code)
	}
	c.dialWS(s, wsPath+"?token="+alice, http.Header{"Origin": {"https://elsewhere.example"}})
	c.dialWS(s, wsPath+"?token="+alice+"&last_event_id=x", nil)
	resp, body = c.call("GET", s.URL+wsPath+"?token="+alice, "", nil, nil)
	want("ws without an upgrade", resp, body, http.StatusBadRequest, "not_websocket")

	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/cancel", api, v.ID), alice, nil, nil)
	want("cancel a completed video", resp, body, http.StatusConflict, "video_finished")
	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/cancel", api, v.ID), bob, nil, nil)
	want("cancel another's video", resp, body, http.StatusNotFound, "not_found")
	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/cancel", api, v.ID), "", nil, nil)
	want("cancel without a token", resp, body, http.StatusUnauthorized, "unauthorized")

	resp, body = c.call("POST", api+"/videos/generate", alice, good, nil)
	want("a second generate", resp, body, http.StatusCreated, "")
	resp, body = c.call("GET", api+"/videos?limit=1", alice, nil, nil)
	want("list", resp, body, http.StatusOK, "")
	page := decodeJSON[struct {
		NextCursor *string `json:"next_cursor"`
	}](t, body)
	if page.NextCursor == nil {
		t.Fatalf("list of 1 of 2 videos: %s; want a next_cursor", body)
	}
	resp, body = c.call("GET", api+"/videos?limit=1&cursor="+*page.NextCursor, alice, nil, nil)
	want("list's next page", resp, body, http.StatusOK, "")
	resp, body = c.call("GET", api+"/videos?limit=0", alice, nil, nil)
	want("list with limit 0", resp, body, http.StatusUnprocessableEntity, "validation_failed")
	resp, body = c.call("GET", api+"/videos", "", nil, nil)
	want("list without a token", resp, body, http.StatusUnauthorized, "unauthorized")
	resp, body = c.call("GET", fmt.Sprintf("%s/videos/%d", api, v.ID), alice, nil, nil)
	want("get", resp, body, http.StatusOK, "")
	resp, body = c.call("GET", fmt.Sprintf("%s/videos/%d", api, v.ID), bob, nil, nil)
	want("get another's video", resp, body, http.StatusNotFound, "not_found")
	resp, body = c.call("GET", fmt.Sprintf("%s/videos/%d", api, v.ID), "", nil, nil)
	want("get without a token", resp, body, http.StatusUnauthorized, "unauthorized")

	resp, body = c.call("POST", api+"/session", alice, nil, nil)
	want("sign in", resp, body, http.StatusNoContent, "")
	cookie := resp.Header.Get("Set-Cookie")
	cookie, _, _ = strings.Cut(cookie, ";")
	resp, body = c.call("POST", api+"/videos/generate", "", good, map[string]string{"Cookie": cookie})
	want("generate by cookie without X-Requested-With", resp, body, http.StatusUnauthorized, "unauthorized")
	resp, body = c.call("POST", api+"/videos/generate", "", good, map[string]string{"Cookie": cookie, "X-Requested-With": "stephub"})
	want("generate by cookie", resp, body, http.StatusCreated, "")
	resp, body = c.call("POST", api+"/session", "", nil, map[string]string{"Cookie": cookie})
	want("sign in by cookie", resp, body, http.StatusUnauthorized, "unauthorized")
	resp, body = c.call("DELETE", api+"/session", "", nil, nil)
	want("sign out", resp, body, http.StatusNoContent, "")

	resp, body = c.call("OPTIONS", api+"/videos", "", nil, nil)
	want("OPTIONS", resp, body, http.StatusNoContent, "")
	resp, body = c.call("DELETE", api+"/videos", alice, nil, nil)
	want("DELETE on a GET route", resp, body, http.StatusMethodNotAllowed, "method_not_allowed")
	resp, body = c.call("GET", api+"/nothing-here", alice, nil, nil)
	want("an unknown path", resp, body, http.StatusNotFound, "not_found")
}

// checkWorkerFlows covers claims, worker posts and their refusals, cancel,
// live streams of a running job over SSE and WebSocket, and the stream
// cap.
func checkWorkerFlows(t *testing.T, c *apiChecker, s *testServer) {
	dave := userToken(t, "oa-dave")
	api := s.URL + "/api/v1"
	want := func(what string, resp *http.Response, body []byte, status int, code string) {
		t.Helper()
		checkAnswer(t, what, resp, body, status, code)
	}
	post := func(id int64, token string, body any, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		return c.call("POST", fmt.Sprintf("%s/videos/%d/events", api, id), token, body, header)
	}

	resp, body := c.call("POST", api+"/worker/claim?wait=0", testWorkerToken, nil, nil)
	want("claim with nothing pending", resp, body, http.StatusNoContent, "")
	resp, body = c.call("POST", api+"/worker/claim?wait=forever", testWorkerToken, nil, nil)
	want("claim with a bad wait", resp, body, http.StatusUnprocessableEntity, "validation_failed")
	resp, body = c.call("POST", api+"/worker/claim", dave, nil, nil)
	want("claim with a user's token", resp, body, http.StatusUnauthorized, "unauthorized")

	v := generate(t, s, dave)
	resp, body = c.call("POST", api+"/worker/claim?wait=5s", testWorkerToken, nil, nil)
	want("claim", resp, body, http.StatusOK, "")
	lease := decodeJSON[struct {
		LeaseToken string `json:"lease_token"`
	}](t, body).LeaseToken
	withLease := map[string]string{"Lease-Token": lease, "Idempotency-Key": "oa-1"}
	resp, body = post(v.ID, testWorkerToken, workerStep(1), withLease)
	want("post step 1", resp, body, http.StatusAccepted, "")
	for _, tc := range []struct {
		what   string
		id     int64
		token  string
		body   any
		header map[string]string
		status int
		code   string
	}{
		{"a user's token", v.ID, dave, workerStep(2), nil, http.StatusUnauthorized, "unauthorized"},
		{"an unknown video", v.ID + 1000, testWorkerToken, workerStep(2), nil, http.StatusNotFound, "not_found"},
		{"no lease token", v.ID, testWorkerToken, workerStep(2), nil, http.StatusConflict, "lease_held"},
		{"another lease token", v.ID, testWorkerToken, workerStep(2), map[string]string{"Lease-Token": "stale"}, http.StatusConflict, "lease_lost"},
		{"not JSON", v.ID, testWorkerToken, "{", map[string]string{"Lease-Token": lease}, http.StatusBadRequest, "invalid_json"},
		{"text/plain", v.ID, testWorkerToken, workerStep(2), map[string]string{"Lease-Token": lease, "Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"over 64 KiB", v.ID, testWorkerToken, `{"message": "` + strings.Repeat("a", 70<<10) + `"}`, map[string]string{"Lease-Token": lease}, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"step 0", v.ID, testWorkerToken, map[string]any{"step": 0, "message": "zero", "progress": 0}, map[string]string{"Lease-Token": lease}, http.StatusUnprocessableEntity, "validation_failed"},
	} {
		resp, body = post(tc.id, tc.token, tc.body, tc.header)
		want("post with "+tc.what, resp, body, tc.status, tc.code)
	}

	// The job is running: a stream by ticket gets its event and stays
	// open, a second of the same user is over the cap, a WebSocket then
	// gets the event too.
	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/ticket", api, v.ID), dave, nil, nil)
	want("ticket", resp, body, http.StatusOK, "")
	ticket := decodeJSON[struct{ Ticket string }](t, body).Ticket
	streamURL := fmt.Sprintf("%s/videos/%d/stream", api, v.ID)
	req, _ := http.NewRequest("GET", streamURL+"?ticket="+ticket, nil)
	open, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if events := c.readSSE("a live stream", open, 1); len(events) != 1 || events[0].Step != 1 {
		t.Errorf("live stream: %v; want step 1", events)
	}
	resp, body = c.call("GET", streamURL+"?token="+dave, "", nil, nil)
	want("a stream over the cap", resp, body, http.StatusTooManyRequests, "too_many_streams")
	open.Body.Close()
	// The first stream's slot frees once the server sees it go.
	var conn *websocket.Conn
	for deadline := time.Now().Add(5 * time.Second); conn == nil && time.Now().Before(deadline); {
		conn = c.dialWS(s, fmt.Sprintf("/api/v1/videos/%d/ws?ticket=%s", v.ID, ticket), nil)
	}
	if conn == nil {
		t.Fatal("the WebSocket did not open after the SSE stream closed")
	}
	_, frame, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	c.checkSchema("a WebSocket frame", "Event", frame)
	if c.dialWS(s, fmt.Sprintf("/api/v1/videos/%d/ws?ticket=%s", v.ID, ticket), nil) != nil {
		t.Error("a WebSocket over the cap opened")
	}
	conn.Close()
	c.dialWS(s, fmt.Sprintf("/api/v1/videos/%d/ws", v.ID), nil)
	c.dialWS(s, fmt.Sprintf("/api/v1/videos/%d/ws?token=%s", v.ID, userToken(t, "oa-erin")), nil)

	resp, body = c.call("POST", fmt.Sprintf("%s/videos/%d/cancel", api, v.ID), dave, nil, nil)
	want("cancel", resp, body, http.StatusOK, "")
	resp, body = post(v.ID, testWorkerToken, workerStep(2), map[string]string{"Lease-Token": lease})
	want("post to a cancelled video", resp, body, http.StatusConflict, "video_cancelled")

	// A post without a lease token claims a pending video, and learns
	// the lease's token from the answer.
	w := generate(t, s, dave)
	resp, body = post(w.ID, testWorkerToken, workerStep(1), nil)
	want("post claiming a pending video", resp, body, http.StatusAccepted, "")
	if resp.Header.Get("Lease-Token") == "" {
		t.Error("a post that claimed a video got no Lease-Token header")
	}
	resp, body = post(w.ID, testWorkerToken, workerStep(stephubSteps), map[string]string{"Lease-Token": resp.Header.Get("Lease-Token")})
	want("post the terminal step", resp, body, http.StatusAccepted, "")
	resp, body = post(w.ID, testWorkerToken, workerStep(stephubSteps), nil)
	want("post to a completed video", resp, body, http.StatusConflict, "video_finished")
}
