package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// getOrHead is GET with HEAD: HEAD answers with GET's status and headers, and net/http sends
// no body. Every GET route takes it but the event streams.
var getOrHead = []string{http.MethodGet, http.MethodHead}

// routes is the table of contents of the messenger's URLs. /metrics is not among them:
// it is served on its own listener (MetricsHandler).
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.observe, s.recoverPanic, s.securityHeaders, s.limitBody)

	// Operations.
	e.Match(getOrHead, "/healthz", s.healthz)
	e.Match(getOrHead, "/readyz", s.readyz)
	e.Match(getOrHead, "/static/*", s.staticFiles())
	e.Match(getOrHead, "/sw.js", s.serviceWorker())
	e.Match(getOrHead, "/manifest.webmanifest", s.webManifest())

	// Signing in.
	e.POST("/auth/portal", s.portalSignIn, s.portalOriginOnly)
	e.Match(getOrHead, "/embed", s.embed)
	if s.cfg.Dev {
		e.Match(getOrHead, "/dev/login", s.devLoginPage)
		e.POST("/dev/login", s.devLogin, s.sameOriginOnly)
	}

	// The email digest's unsubscribe link: its signed token is the authority.
	e.Match(getOrHead, "/unsubscribe", s.unsubscribe)
	e.POST("/unsubscribe", s.unsubscribe)

	// Pages and fragments, for a browser with a session cookie.
	web := e.Group("", s.requireSession, s.sameOriginOnly, s.requireCSRF)
	web.Match(getOrHead, "/", s.conversationList)
	web.Match(getOrHead, "/conversations", s.conversationRows)
	web.Match(getOrHead, "/fragments/list", s.listFragment)
	web.POST("/conversations", s.conversationCreate)
	web.Match(getOrHead, "/new", s.conversationNew)
	web.Match(getOrHead, "/people", s.peopleSearch)
	web.Match(getOrHead, "/c/:id", s.threadShow)
	web.Match(getOrHead, "/c/:id/messages", s.messageList)
	web.POST("/c/:id/messages", s.messageCreate)
	web.POST("/c/:id/read", s.conversationRead)
	web.POST("/c/:id/typing", s.conversationTyping)
	web.POST("/c/:id/leave", s.conversationLeave)
	web.Match(getOrHead, "/c/:id/header", s.threadHeader)
	web.Match(getOrHead, "/c/:id/invite", s.conversationInvite)
	web.Match(getOrHead, "/c/:id/invite/people", s.invitePeople)
	web.POST("/c/:id/participants", s.participantsAdd)
	web.POST("/c/:id/participants/:sub/remove", s.participantRemove)
	web.POST("/c/:id/participants/:sub/role", s.participantRole)
	web.POST("/c/:id/rename", s.conversationRename)
	web.Match(getOrHead, "/c/:id/audit", s.auditLog)
	s.upload(web.POST("/c/:id/files", s.fileUpload), s.uploadBodyLimit())
	web.Match(getOrHead, "/files/:id/content", s.fileContent)
	web.Match(getOrHead, "/files/:id/thumbnail/:size", s.fileThumbnail)
	web.POST("/files/:id/delete", s.fileDelete)
	web.POST("/uploads/:id/dismiss", s.uploadDismiss)
	web.POST("/c/:id/settings", s.conversationSettings, s.changesSettings)
	web.Match(getOrHead, "/settings", s.settingsShow)
	web.POST("/settings", s.settingsSave, s.changesSettings)
	web.GET("/events", s.events, s.sameSiteStream)
	web.POST("/logout", s.logout)
	web.POST("/push/tickets", s.pushTicket)
	web.Match(getOrHead, "/push/devices", s.pushDevices)
	web.POST("/push/devices/:id/delete", s.pushDeviceRemove)

	// Web Push: the key and the opt-in window need no session; a subscription is posted
	// with a session, a portal token or a one-time ticket (pushSubscribe decides).
	e.Match(getOrHead, "/api/v1/push/key", s.pushKey)
	e.Match(getOrHead, "/push/enable", s.pushEnable)
	e.POST("/api/v1/push/subscriptions", s.pushSubscribe)

	// JSON API, for the portal and other clients with a portal token.
	api := e.Group("/api/v1", s.requireBearer)
	api.Match(getOrHead, "/me", s.apiMe)
	api.Match(getOrHead, "/me/settings", s.apiMySettings)
	api.PUT("/me/settings", s.apiMySettingsSave, s.changesSettings)
	api.Match(getOrHead, "/conversations", s.apiConversationList)
	api.POST("/conversations", s.apiConversationCreate)
	api.Match(getOrHead, "/conversations/:id", s.apiConversationShow)
	api.PUT("/conversations/:id", s.apiConversationRename)
	api.DELETE("/conversations/:id", s.apiConversationLeave)
	api.POST("/conversations/:id/participants", s.apiParticipantsAdd)
	api.PUT("/conversations/:id/participants/:sub", s.apiParticipantRole)
	api.DELETE("/conversations/:id/participants/:sub", s.apiParticipantRemove)
	api.Match(getOrHead, "/conversations/:id/audit", s.apiAuditLog)
	api.Match(getOrHead, "/conversations/:id/messages", s.apiMessageList)
	api.POST("/conversations/:id/messages", s.apiMessageCreate)
	api.POST("/conversations/:id/read", s.apiConversationRead)
	api.POST("/conversations/:id/typing", s.apiConversationTyping)
	api.Match(getOrHead, "/conversations/:id/settings", s.apiConversationSettings)
	api.PUT("/conversations/:id/settings", s.apiConversationSettingsSave, s.changesSettings)
	s.upload(api.POST("/conversations/:id/files", s.apiFileUpload), s.uploadBodyLimit())
	api.Match(getOrHead, "/uploads/:id", s.apiUploadShow)
	api.Match(getOrHead, "/files/:id", s.apiFileShow)
	api.Match(getOrHead, "/files/:id/content", s.fileContent)
	api.Match(getOrHead, "/files/:id/thumbnail/:size", s.fileThumbnail)
	api.DELETE("/files/:id", s.apiFileDelete)
	api.Match(getOrHead, "/unread", s.apiUnread)
	api.GET("/events", s.apiEvents)
	api.DELETE("/push/subscriptions/:id", s.apiPushUnsubscribe)

	// Uploads (s.upload) are the only routes that take multipart bodies, up to their own
	// limit: every file at its largest, and a MiB more.
	// Unknown URLs go to s.notFound (the router's NotFoundHandler, see New).
}
