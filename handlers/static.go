package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/static"
)

// staticFiles serves the embedded assets. Pages link them with a content-hash query, so
// they may be cached for a year.
func (s *Server) staticFiles() echo.HandlerFunc {
	files := http.StripPrefix("/static/", http.FileServerFS(static.FS))
	return func(c *echo.Context) error {
		if strings.HasSuffix(c.Request().URL.Path, "/") {
			return messenger.Errorf(messenger.ENOTFOUND, "error.not_found.short")
		}
		h := c.Response().Header()
		if c.QueryParam("v") != "" {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=300")
		}
		files.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
