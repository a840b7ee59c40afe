package handlers

import (
	"github.com/labstack/echo/v5"
)

// routes is the table of contents of the messenger's URLs.
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.observe, s.recoverPanic, s.securityHeaders)

	// Operations.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler())
	e.GET("/static/*", s.staticFiles())

	// Signing in.
	e.POST("/auth/portal", s.portalSignIn, s.portalOriginOnly)
	e.GET("/embed", s.embed)
	if s.cfg.Dev {
		e.GET("/dev/login", s.devLoginPage)
		e.POST("/dev/login", s.devLogin, s.sameOriginOnly)
	}

	// Pages, for a browser with a session cookie.
	web := e.Group("", s.requireSession, s.sameOriginOnly, s.requireCSRF)
	web.GET("/", s.conversationList)
	web.GET("/conversations", s.conversationRows)
	web.GET("/c/:id", s.threadShow)
	web.POST("/logout", s.logout)

	// JSON API, for the portal and other clients with a portal token.
	api := e.Group("/api/v1", s.requireBearer)
	api.GET("/me", s.apiMe)
	api.GET("/conversations", s.apiConversationList)
	api.GET("/unread", s.apiUnread)

	e.RouteNotFound("/*", s.notFound)
}
