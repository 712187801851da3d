package api

import (
	"net/http"
	"slices"
	"strings"

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
	rt := &router{mux: mux, observe: observe, byValue: make(map[string]map[string]http.Handler)}
	mux.NotFound = notFound
	mux.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.correctAllow(w.Header(), r.URL.Path)
		notAllowed.ServeHTTP(w, r)
	})
	// OPTIONS requests that are not preflights (the CORS middleware answers
	// those) get the route's Allow header and no body.
	mux.GlobalOPTIONS = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.correctAllow(w.Header(), r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	})
	return rt
}

// correctAllow takes out of the Allow header that httprouter set for path
// the methods that only reach a besideWildcard route, unless path is that
// route: httprouter sees POST on /api/v1/videos/:id, but only
// /api/v1/videos/generate answers it.
func (rt *router) correctAllow(h http.Header, path string) {
	methods := strings.Split(h.Get("Allow"), ", ")
	methods = slices.DeleteFunc(methods, func(method string) bool {
		byValue, ok := rt.byValue[method+" "+wildcardTwin(path)]
		_, served := byValue[lastSegment(path)]
		return ok && !served
	})
	h.Set("Allow", strings.Join(methods, ", "))
}

// wildcardTwin is the besideWildcard pattern whose wildcard, the last
// segment, path would fill, or "".
func wildcardTwin(path string) string {
	for _, alias := range besideWildcard {
		prefix, _ := strings.CutSuffix(alias.pattern, ":"+alias.param)
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
			return alias.pattern
		}
	}
	return ""
}

func lastSegment(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

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
