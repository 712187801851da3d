package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// besideWildcard lists the routes whose static segment sits where another
// route of the same method has a wildcard. httprouter v1 refuses such pairs
// (POST /api/v1/videos/generate beside POST /api/v1/videos/:id/cancel), so
// each is registered as its wildcard twin and picked out by the value.
var besideWildcard = map[string]struct{ pattern, param, value string }{
	"/api/v1/videos/generate": {"/api/v1/videos/:id", "id", "generate"},
}

// router is httprouter plus per-route observation (logs and metrics), JSON
// errors for unknown routes, and the besideWildcard workaround.
type router struct {
	mux     *httprouter.Router
	observe func(route string, h http.Handler) http.Handler
	// byValue holds, per method and wildcard pattern, the routes picked by
	// the wildcard's value.
	byValue map[string]map[string]http.Handler
	// routes lists what handle registered, in order.
	routes []Route
}

// Route is one method and path pattern the server answers, in
// httprouter's syntax: /api/v1/videos/:id, /static/*file.
type Route struct {
	Method, Pattern string
}

func newRouter(observe func(string, http.Handler) http.Handler, notFound, notAllowed http.Handler) *router {
	mux := httprouter.New()
	mux.NotFound = notFound
	mux.MethodNotAllowed = notAllowed
	// OPTIONS requests that are not preflights (the CORS middleware answers
	// those) get the route's Allow header and no body.
	mux.GlobalOPTIONS = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	return &router{mux: mux, observe: observe, byValue: make(map[string]map[string]http.Handler)}
}

// handle registers h for method and pattern, and for HEAD too when method
// is GET, as RFC 9110 asks: net/http sends the head and drops the body.
func (rt *router) handle(method, pattern string, h http.Handler) {
	if method == http.MethodGet {
		rt.handle(http.MethodHead, pattern, h)
	}
	rt.routes = append(rt.routes, Route{method, pattern})
	h = rt.observe(pattern, h)
	alias, ok := besideWildcard[pattern]
	if !ok {
		rt.mux.Handler(method, pattern, h)
		return
	}
	key := method + " " + alias.pattern
	if rt.byValue[key] == nil {
		rt.byValue[key] = make(map[string]http.Handler)
		byValue := rt.byValue[key]
		notFound := rt.mux.NotFound
		rt.mux.Handler(method, alias.pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, ok := byValue[httprouter.ParamsFromContext(r.Context()).ByName(alias.param)]; ok {
				h.ServeHTTP(w, r)
				return
			}
			notFound.ServeHTTP(w, r)
		}))
	}
	rt.byValue[key][alias.value] = h
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }
