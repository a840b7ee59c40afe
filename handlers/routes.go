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

	// Pages and fragments, for a browser with a session cookie.
	web := e.Group("", s.requireSession, s.sameOriginOnly, s.requireCSRF)
	web.GET("/", s.conversationList)
	web.GET("/conversations", s.conversationRows)
	web.POST("/conversations", s.conversationCreate)
	web.GET("/new", s.conversationNew)
	web.GET("/people", s.peopleSearch)
	web.GET("/c/:id", s.threadShow)
	web.GET("/c/:id/messages", s.messageList)
	web.POST("/c/:id/messages", s.messageCreate)
	web.POST("/c/:id/read", s.conversationRead)
	web.POST("/c/:id/typing", s.conversationTyping)
	web.POST("/c/:id/leave", s.conversationLeave)
	web.GET("/c/:id/header", s.threadHeader)
	web.GET("/c/:id/invite", s.conversationInvite)
	web.GET("/c/:id/invite/people", s.invitePeople)
	web.POST("/c/:id/participants", s.participantsAdd)
	web.POST("/c/:id/participants/:sub/remove", s.participantRemove)
	web.POST("/c/:id/participants/:sub/role", s.participantRole)
	web.POST("/c/:id/rename", s.conversationRename)
	web.GET("/c/:id/audit", s.auditLog)
	web.GET("/events", s.events, s.sameSiteStream)
	web.POST("/logout", s.logout)

	// JSON API, for the portal and other clients with a portal token.
	api := e.Group("/api/v1", s.requireBearer)
	api.GET("/me", s.apiMe)
	api.GET("/conversations", s.apiConversationList)
	api.POST("/conversations", s.apiConversationCreate)
	api.GET("/conversations/:id", s.apiConversationShow)
	api.PUT("/conversations/:id", s.apiConversationRename)
	api.DELETE("/conversations/:id", s.apiConversationLeave)
	api.POST("/conversations/:id/participants", s.apiParticipantsAdd)
	api.PUT("/conversations/:id/participants/:sub", s.apiParticipantRole)
	api.DELETE("/conversations/:id/participants/:sub", s.apiParticipantRemove)
	api.GET("/conversations/:id/audit", s.apiAuditLog)
	api.GET("/conversations/:id/messages", s.apiMessageList)
	api.POST("/conversations/:id/messages", s.apiMessageCreate)
	api.POST("/conversations/:id/read", s.apiConversationRead)
	api.POST("/conversations/:id/typing", s.apiConversationTyping)
	api.GET("/unread", s.apiUnread)
	api.GET("/events", s.apiEvents)

	e.RouteNotFound("/*", s.notFound)
}
