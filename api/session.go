package api

import (
	"net/http"
	"time"

	"github.com/stephub/stephub/auth"
)

// sessionCookie signs the dashboard in. It holds the user's access token,
// HttpOnly so that no script of the page can read it, and SameSite=Strict
// so that no other site's page sends it; it lasts as long as the token.
const sessionCookie = "stephub_session"

// csrfHeader must come with every request other than GET and HEAD that the
// cookie alone signs in. SameSite=Strict keeps other sites out,
// but not pages of the same site on another port or subdomain; none of
// them can send a custom header without a CORS preflight, which the server
// never grants with credentials. Any value will do; the dashboard sends
// "stephub".
const csrfHeader = "X-Requested-With"

// safeMethod reports whether method only reads.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// setSession signs the browser in with token, which expires at expires.
func setSession(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:  sessionCookie,
		Value: token,
		Path:  "/",
		// At least a second: a MaxAge of 0 would make a cookie that lasts
		// until the browser closes.
		MaxAge:   max(int(time.Until(expires)/time.Second), 1),
		HttpOnly: true,
		Secure:   isHTTPS(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// clearSession signs the browser out.
func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteStrictMode})
}

// isHTTPS reports whether the browser reached the server over HTTPS, itself
// or through a proxy that says so: the cookie then goes over HTTPS only.
func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// signInByLink lets GET /?token=<token> (and /videos/{id}?token=) sign a
// browser in, as the contract's sign-in link does, unless another site's
// page sent it there (see crossSite): a valid token becomes
// the session cookie, and any other signs the browser out, so that the
// page never shows someone else's session for a link that did not work.
// The page then takes the token out of the address bar.
func (s *Server) signInByLink(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("token") && !crossSite(r) {
			token := q.Get("token")
			if c, err := s.accessToken(token); err == nil {
				setSession(w, r, token, c.expires)
			} else {
				clearSession(w, r)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// crossSite reports whether the browser says the request comes from
// another site's page. A sign-in link followed from there neither signs in
// nor out: any page could otherwise sign its visitors into an account of
// its choosing. Typed and bookmarked addresses say "none"; browsers that
// send no Sec-Fetch-Site are let through.
func crossSite(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site != "" && site != "none" && site != "same-origin"
}

// handleSignIn answers POST /api/v1/session, which requireUser lets in by
// the Authorization header alone: the token becomes the session cookie.
func (s *Server) handleSignIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := auth.HeaderToken(r)
		setSession(w, r, token, credentialOf(r).expires)
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleSignOut answers DELETE /api/v1/session: the cookie goes. It needs
// no credential, and no other site can send a DELETE without a CORS
// preflight.
func (s *Server) handleSignOut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clearSession(w, r)
		w.WriteHeader(http.StatusNoContent)
	})
}
