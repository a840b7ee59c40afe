package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// read is GET with HEAD: HEAD answers with GET's status and headers, and net/http sends
// no body. Every GET route takes it but the event streams.
var read = []string{http.MethodGet, http.MethodHead}

// routes is the table of contents of the messenger's URLs. /metrics is not among them:
// it is served on its own listener (MetricsHandler).
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.observe, s.recoverPanic, s.securityHeaders, s.limitBody)

	// Operations.
	e.Match(read, "/healthz", s.healthz)
	e.Match(read, "/readyz", s.readyz)
	e.Match(read, "/static/*", s.staticFiles())

	// Signing in.
	e.POST("/auth/portal", s.portalSignIn, s.portalOriginOnly)
	e.Match(read, "/embed", s.embed)
	if s.cfg.Dev {
		e.Match(read, "/dev/login", s.devLoginPage)
		e.POST("/dev/login", s.devLogin, s.sameOriginOnly)
	}

	// Pages and fragments, for a browser with a session cookie.
	web := e.Group("", s.requireSession, s.sameOriginOnly, s.requireCSRF)
	web.Match(read, "/", s.conversationList)
	web.Match(read, "/conversations", s.conversationRows)
	web.POST("/conversations", s.conversationCreate)
	web.Match(read, "/new", s.conversationNew)
	web.Match(read, "/people", s.peopleSearch)
	web.Match(read, "/c/:id", s.threadShow)
	web.Match(read, "/c/:id/messages", s.messageList)
	web.POST("/c/:id/messages", s.messageCreate)
	web.POST("/c/:id/read", s.conversationRead)
	web.POST("/c/:id/typing", s.conversationTyping)
	web.POST("/c/:id/leave", s.conversationLeave)
	web.Match(read, "/c/:id/header", s.threadHeader)
	web.Match(read, "/c/:id/invite", s.conversationInvite)
	web.Match(read, "/c/:id/invite/people", s.invitePeople)
	web.POST("/c/:id/participants", s.participantsAdd)
	web.POST("/c/:id/participants/:sub/remove", s.participantRemove)
	web.POST("/c/:id/participants/:sub/role", s.participantRole)
	web.POST("/c/:id/rename", s.conversationRename)
	web.Match(read, "/c/:id/audit", s.auditLog)
	web.GET("/events", s.events)
	web.POST("/logout", s.logout)

	// JSON API, for the portal and other clients with a portal token.
	api := e.Group("/api/v1", s.requireBearer)
	api.Match(read, "/me", s.apiMe)
	api.Match(read, "/conversations", s.apiConversationList)
	api.POST("/conversations", s.apiConversationCreate)
	api.Match(read, "/conversations/:id", s.apiConversationShow)
	api.PUT("/conversations/:id", s.apiConversationRename)
	api.DELETE("/conversations/:id", s.apiConversationLeave)
	api.POST("/conversations/:id/participants", s.apiParticipantsAdd)
	api.PUT("/conversations/:id/participants/:sub", s.apiParticipantRole)
	api.DELETE("/conversations/:id/participants/:sub", s.apiParticipantRemove)
	api.Match(read, "/conversations/:id/audit", s.apiAuditLog)
	api.Match(read, "/conversations/:id/messages", s.apiMessageList)
	api.POST("/conversations/:id/messages", s.apiMessageCreate)
	api.POST("/conversations/:id/read", s.apiConversationRead)
	api.POST("/conversations/:id/typing", s.apiConversationTyping)
	api.Match(read, "/unread", s.apiUnread)
	api.GET("/events", s.apiEvents)

	// Uploads (none yet) are the only routes that take multipart bodies, up to their own
	// limit: s.upload(api.POST(path, handler), limit).
	// Unknown URLs go to s.notFound (the router's NotFoundHandler, see New).
}
