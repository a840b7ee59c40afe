package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
)

// pushSubscriptionBody is a browser's PushSubscription (toJSON), with the one-time ticket
// when the request has no session.
type pushSubscriptionBody struct {
	chat.PushSubscription
	ExpirationTime *float64 `json:"expirationTime"`
	Ticket         string   `json:"ticket"`
}

// pushSubscribe stores this browser's subscription for the caller: a portal token
// (Bearer), a session cookie with its CSRF token, or — for the small window that has
// neither — a one-time ticket. A ticket of another user than the request's session or
// token is refused (and used up).
func (s *Server) pushSubscribe(c *echo.Context) error {
	if s.publicKey() == "" {
		return messenger.Errorf(messenger.ENOTFOUND, "error.push.off")
	}
	var body pushSubscriptionBody
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	var id messenger.Identity
	caller := func(c *echo.Context) error {
		me, _ := auth.UserFrom(c.Request().Context())
		id = me.Identity()
		return nil
	}
	req := c.Request()
	switch {
	case req.Header.Get("Authorization") != "":
		if err := s.requireBearer(caller)(c); err != nil {
			return err
		}
	case body.Ticket == "":
		if err := s.requireSession(s.sameOriginOnly(s.requireCSRF(caller)))(c); err != nil {
			return err
		}
	default:
		if err := s.cop.Check(req); err != nil {
			return messenger.Errorf(messenger.EFORBIDDEN, "error.cross_origin")
		}
		if sess, ok := s.liveSession(c); ok {
			id = sess
		}
	}
	if body.Ticket != "" {
		holder, err := s.chat.RedeemPushTicket(req.Context(), body.Ticket)
		if err != nil {
			return err
		}
		if id.UserID != 0 && id.UserID != holder.UserID {
			return messenger.Errorf(messenger.EFORBIDDEN, "error.ticket.other_user")
		}
		id = holder
	}
	saved, err := s.chat.SubscribePush(req.Context(), id, body.PushSubscription, chat.BrowserName(req.Header.Get("User-Agent")), s.cfg.PushAllowPrivate, s.cfg.MaxPushDevices)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"id": saved})
}

// liveSession answers the identity of the request's session cookie, if it is live: a
// ticket must not subscribe a browser signed in as someone else.
func (s *Server) liveSession(c *echo.Context) (messenger.Identity, bool) {
	cookie, err := c.Cookie(s.cookieName())
	if err != nil || cookie.Value == "" {
		return messenger.Identity{}, false
	}
	sess, err := s.chat.LiveSession(c.Request().Context(), cookie.Value)
	if err != nil {
		return messenger.Identity{}, false
	}
	return sess.Identity, true
}
