package api

import (
	"net/http"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/transport"
)

// addRoutes is the whole HTTP surface on one screen.
func (s *Server) addRoutes(rt *router) {
	rt.handle(http.MethodPost, "/api/v1/videos/generate", s.requireUser(apiSources, s.handleGenerate()))
	rt.handle(http.MethodGet, "/api/v1/videos", s.requireUser(apiSources, s.handleListVideos()))
	rt.handle(http.MethodGet, "/api/v1/videos/:id", s.requireUser(apiSources, s.handleGetVideo()))
	rt.handle(http.MethodPost, "/api/v1/videos/:id/cancel", s.requireUser(apiSources, s.handleCancel()))
	rt.handle(http.MethodPost, "/api/v1/videos/:id/ticket", s.requireUser(ticketSources, s.handleTicket()))
	rt.handle(http.MethodGet, "/api/v1/videos/:id/stream", s.requireUser(streamSources, s.handleStream(transport.SSE)))
	rt.handle(http.MethodGet, "/api/v1/videos/:id/ws", s.requireUser(streamSources, s.handleStream(transport.WebSocket)))
	rt.handle(http.MethodPost, "/api/v1/videos/:id/events", s.requireWorker(s.handleWorkerEvent()))
	rt.handle(http.MethodPost, "/api/v1/worker/claim", s.requireWorker(s.handleClaim()))
	rt.handle(http.MethodGet, "/api/v1/users/me", s.requireUser(apiSources, s.handleMe()))
	rt.handle(http.MethodPut, "/api/v1/admin/users/:id", s.requireAdmin(s.handleAdminPutUser()))
	rt.handle(http.MethodPost, "/api/v1/session", s.requireUser(sessionSources, s.handleSignIn()))
	rt.handle(http.MethodDelete, "/api/v1/session", s.handleSignOut())

	rt.handle(http.MethodGet, "/metrics", s.Metrics.Handler())
	rt.handle(http.MethodGet, "/healthz", handleHealthz())
	rt.handle(http.MethodGet, "/readyz", s.handleReadyz())

	rt.handle(http.MethodGet, "/openapi.json", handleOpenAPI())
	rt.handle(http.MethodGet, "/docs", s.Docs)
	rt.handle(http.MethodGet, "/docs/*file", s.Docs)

	rt.handle(http.MethodGet, "/", s.signInByLink(s.Static))
	rt.handle(http.MethodGet, "/videos/:id", s.signInByLink(s.Static))
	rt.handle(http.MethodGet, "/static/*file", s.Static)
	rt.handle(http.MethodGet, stephub.MockVideoURL, s.Static)
}
