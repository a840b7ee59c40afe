package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/demo"
	"github.com/dreamseed/messenger/views"
)

// devLoginPage lists the demo users (dev mode only).
func (s *Server) devLoginPage(c *echo.Context) error {
	ctx := withLocale(c)
	p := views.DevLoginProps{Layout: s.layout(views.T(ctx, "dev.title"))}
	for _, org := range demo.Orgs {
		o := views.DevOrg{Name: org.Name}
		for _, u := range demo.Users {
			if u.Org == org {
				o.Users = append(o.Users, views.DevUser{Sub: u.Sub, Name: u.Name, Role: u.Role, OrgName: org.Name})
			}
		}
		p.Orgs = append(p.Orgs, o)
	}
	return render(c, http.StatusOK, views.DevLoginPage(p))
}

// devLogin signs in as a demo user through the same path as the portal: it mints the
// token the portal would send and verifies it like any other.
func (s *Server) devLogin(c *echo.Context) error {
	u, ok := demo.UserBySub(c.FormValue("sub"))
	if !ok {
		return messenger.Errorf(messenger.ENOTFOUND, "error.demo_user")
	}
	token, err := auth.MintToken(s.cfg.DevSecret, s.cfg.Audience, auth.Claims{
		Issuer: s.cfg.Issuer, Subject: u.Sub, Name: u.Name, Email: u.Email,
		OrgID: u.Org.ID, ZoneID: u.Org.Zone, Role: u.Role,
	}, time.Minute)
	if err != nil {
		return err
	}
	me, _, err := s.signIn(c.Request().Context(), c, token)
	if err != nil {
		return err
	}
	if err := s.startSession(c, me); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
