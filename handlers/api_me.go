package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// apiMe answers the caller, as created or updated from their token.
func (s *Server) apiMe(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	return c.JSON(http.StatusOK, map[string]any{"user": me.API()})
}
