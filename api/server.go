// Package api is stephub's HTTP interface: the routes of the contract, their
// authentication, validation and errors. It turns requests into calls on the
// jobs service, the store and the hub, and leaves wire formats of streams to
// the transport package. What it needs of the jobs service and the store it
// names in interfaces of its own (deps.go).
package api

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/auth"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/metrics"
	"github.com/stephub/stephub/transport"
)

// Config is what the API needs to know beyond its collaborators.
type Config struct {
	// AllowedOrigins may call the API from a browser.
	AllowedOrigins []string
	// NewUserCredits is what a user starts with.
	NewUserCredits int64
	// WorkerToken and AdminToken open the worker and admin routes; empty
	// keeps them shut.
	WorkerToken, AdminToken string
	// MaxStreamsPerUser caps one user's concurrent streams on this node;
	// 0 means no cap.
	MaxStreamsPerUser int
	// TicketTTL is how long a watch ticket lasts; 0 means
	// DefaultTicketTTL.
	TicketTTL time.Duration
	// Stream tunes heartbeats and write deadlines.
	Stream transport.Config
}

// Deps are the API's collaborators; all are required.
type Deps struct {
	Logger   *slog.Logger
	Users    Users
	Videos   Videos
	Database Database
	Jobs     Jobs
	Hub      *hub.Hub
	Signer   *auth.Signer
	Metrics  *metrics.Metrics
	// Static serves the dashboard's files and the sample video.
	Static http.Handler
	// Docs serves the interactive API reference at /docs and its files
	// at /docs/{file}.
	Docs http.Handler
}

// Server handles the API's requests. It is safe for concurrent use.
type Server struct {
	Deps
	cfg      Config
	users    *knownUsers
	streams  *streamCounter
	streamer *transport.Streamer
	routes   []Route
	handler  http.Handler
}

// NewServer returns the API as one handler.
func NewServer(cfg Config, deps Deps) *Server {
	s := &Server{Deps: deps, cfg: cfg, users: newKnownUsers(), streams: newStreamCounter(cfg.MaxStreamsPerUser)}
	s.cfg.Stream.Observer = deps.Metrics
	s.streamer = transport.New(s.cfg.Stream)
	rt := newRouter(s.observe,
		s.observe("unmatched", errorHandler(s, stephub.ErrNotFound)),
		s.observe("unmatched", errorHandler(s, errMethodNotAllowed)))
	s.addRoutes(rt)
	s.routes = rt.routes
	s.handler = limitBodies(cors(cfg.AllowedOrigins, rt))
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes returns every route the server answers, HEAD twins of GET routes
// included, in the order routes.go registers them. OPTIONS, answered for
// every path, is not among them.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

func (c Config) ticketTTL() time.Duration {
	if c.TicketTTL > 0 {
		return c.TicketTTL
	}
	return DefaultTicketTTL
}

func errorHandler(s *Server, err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, err) })
}

// readyTimeout bounds the database ping of /readyz.
const readyTimeout = 2 * time.Second
