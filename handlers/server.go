// Package handlers is the HTTP face of the messenger: routes.go lists every URL; each
// action has a short file that parses input, calls one use case and renders.
package handlers

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/static"
	"github.com/dreamseed/messenger/store"
)

// Config is what the handlers need to know about the deployment.
type Config struct {
	Issuer        string   // the portal's iss, for users signed in through dev login
	Audience      string   // the messenger's aud, for dev tokens
	PortalOrigins []string // origins allowed to frame the app and post /auth/portal
	CookieSecure  bool
	// HTTPS is set when the public base URL is https: HSTS, and the session cookie takes
	// the __Host- prefix.
	HTTPS bool
	// CookieSameSite is None (with Partitioned) when the app is framed by a portal on
	// another site, Lax otherwise.
	CookieSameSite http.SameSite
	// MaxBodyBytes bounds every request body but an upload's; 0 -> DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// BodyReadTimeout bounds the time a form or JSON body takes to arrive; 0 ->
	// DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// UploadReadTimeout bounds the time an upload's body takes to arrive; 0 ->
	// DefaultUploadReadTimeout.
	UploadReadTimeout time.Duration
	Dev               bool   // dev login and demo users
	DevSecret         []byte // signs dev login tokens; the verifier must accept it
	// Limits are the per-user rate limits (nil: none), applied by the use cases and by
	// sign-in.
	Limits *ratelimit.Limits
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client (for
	// the sign-in limit per address); none: the connection's address is the client's.
	TrustedProxies []*net.IPNet
	// MaxStreamsPerUser caps a user's live streams: one more closes the oldest
	// (DefaultMaxStreamsPerUser if 0).
	MaxStreamsPerUser int
	// StreamsOnHTTP keeps every live stream on net/http to its end
	// (MESSENGER_STREAMS_DETACH=0), instead of taking an HTTP/1.x stream's connection over
	// once it is caught up (stream_out.go), which costs an idle stream a third of the memory.
	StreamsOnHTTP bool
	// MaxSessionsPerUser caps a user's browser sessions: one more revokes the oldest
	// (DefaultMaxSessionsPerUser if 0).
	MaxSessionsPerUser int
	// MaxUploadBytes bounds one uploaded file (DefaultMaxUploadBytes if 0), and with
	// MaxFilesPerUpload (DefaultMaxFilesPerUpload if 0) the body of an upload; the file
	// use cases check each file again.
	MaxUploadBytes    int64
	MaxFilesPerUpload int
	// PushKeys answers the VAPID public key browsers subscribe with (nil: push is off: no
	// key, no subscriptions).
	PushKeys PushKeys
	// PushAllowPrivate lets subscriptions with http or loopback/private endpoints in, for
	// tests and development (MESSENGER_PUSH_ALLOW_PRIVATE; refused in production config).
	PushAllowPrivate bool
	// MaxPushDevices caps a user's push subscriptions: one more drops the oldest
	// (DefaultMaxPushDevices if 0).
	MaxPushDevices int
	// StreamWriteTimeout is how long a live stream's write may stay blocked (a client that
	// stopped reading) before the stream is closed (DefaultStreamWriteTimeout if 0).
	StreamWriteTimeout time.Duration
	// StreamHiddenClose is how long a page's tab may stay hidden before the page closes its
	// live stream, to open it again where it left off when shown (DefaultStreamHiddenClose
	// if 0).
	StreamHiddenClose time.Duration
}

// PushKeys is where the VAPID public key comes from (package push's key configuration).
type PushKeys interface {
	// PublicKey answers the uncompressed P-256 public key, base64url without padding.
	PublicKey() string
}

// Default caps per user, for a Config that leaves them 0.
const (
	DefaultMaxStreamsPerUser  = 10
	DefaultMaxSessionsPerUser = 20
	DefaultMaxUploadBytes     = 10 << 20
	DefaultMaxFilesPerUpload  = 10
	DefaultMaxPushDevices     = 20
)

// Server holds the dependencies of the handlers.
type Server struct {
	cfg      Config
	db       *store.DB
	chat     *chat.Service
	verifier *auth.Verifier
	engine   realtime.Engine
	logger   *slog.Logger
	metrics  *Metrics
	assetQ   string
	origins  map[string]bool
	cop      *http.CrossOriginProtection
	tokens   *tokenCache
	uploads  map[string]int64 // "METHOD /path" of upload routes -> their body limit
	limits   *ratelimit.Limits
	sessions *sessionChecker // of the open page streams
	unsub    unsubscribeHolder
	pages    *pageCache
	hole     []byte        // stands in a cached page for the value each request fills in
	draining chan struct{} // closed when the process shuts down (Drain)
	// detached counts the live streams served from a goroutine of their own, after their
	// connection was taken from net/http (stream.detach), which no longer waits for them;
	// once WaitStreams has begun (detachDone) no stream detaches: it ends on net/http.
	detached   sync.WaitGroup
	detachMu   sync.Mutex
	detachDone bool
	drainOnce  sync.Once
	unready    chan struct{} // closed when /readyz turns 503 (Unready, or Drain)
	readyOnce  sync.Once
}

// DefaultMaxBodyBytes is the body limit of forms and JSON: a message of
// messenger.MaxMessageLength emoji is 48,000 bytes escaped (12 bytes each as JSON
// surrogate pairs or percent-encoded UTF-8), and it has to fit with room to spare.
const DefaultMaxBodyBytes = 64 << 10

// New answers the HTTP handler of the messenger, whose handlers call the use cases of
// svc. What svc publishes from then on passes through the handlers' page cache, so New
// comes before svc serves anyone.
func New(cfg Config, db *store.DB, svc *chat.Service, verifier *auth.Verifier, engine realtime.Engine, logger *slog.Logger) (*echo.Echo, *Server) {
	metrics := NewMetrics()
	if cfg.MaxStreamsPerUser == 0 {
		cfg.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if cfg.MaxSessionsPerUser == 0 {
		cfg.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.MaxPushDevices <= 0 {
		cfg.MaxPushDevices = DefaultMaxPushDevices
	}
	if cfg.MaxFilesPerUpload <= 0 {
		cfg.MaxFilesPerUpload = DefaultMaxFilesPerUpload
	}
	pages := newPageCache(engine, logger)
	announce := func(e realtime.Engine) realtime.Engine { return announcingEngine{Engine: e, pages: pages} }
	engine = announce(engine)
	svc.WrapEvents(announce)
	s := &Server{
		pages:    pages,
		hole:     []byte(uuid.NewString()),
		cfg:      cfg,
		db:       db,
		chat:     svc,
		verifier: verifier,
		engine:   engine,
		logger:   logger,
		metrics:  metrics,
		assetQ:   "?v=" + static.Version(),
		origins:  make(map[string]bool),
		cop:      http.NewCrossOriginProtection(),
		tokens:   newTokenCache(),
		sessions: newSessionChecker(heartbeatEvery, db.LiveSessions, logger),
		uploads:  make(map[string]int64),
		limits:   cfg.Limits,
		draining: make(chan struct{}),
		unready:  make(chan struct{}),
	}
	if s.cfg.MaxBodyBytes <= 0 {
		s.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.cfg.BodyReadTimeout <= 0 {
		s.cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if s.cfg.StreamWriteTimeout <= 0 {
		s.cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if s.cfg.StreamHiddenClose <= 0 {
		s.cfg.StreamHiddenClose = DefaultStreamHiddenClose
	}
	if s.cfg.UploadReadTimeout <= 0 {
		s.cfg.UploadReadTimeout = DefaultUploadReadTimeout
	}
	if cfg.Limits != nil {
		metrics.Registry.MustRegister(cfg.Limits)
	}
	for _, o := range cfg.PortalOrigins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			s.origins[u.Scheme+"://"+u.Host] = true
		}
	}
	e := echo.NewWithConfig(echo.Config{
		Logger:           logger,
		HTTPErrorHandler: s.handleError,
		// One answer for an unknown URL whatever group it falls in, and 405 for a known
		// path with another method: groups do not add catch-all routes of their own.
		Router:                       echo.NewRouter(echo.RouterConfig{NotFoundHandler: s.notFound}),
		NoGroupAutoRegister404Routes: true,
		IPExtractor:                  clientIPExtractor(cfg.TrustedProxies),
	})
	s.routes(e)
	return e, s
}
