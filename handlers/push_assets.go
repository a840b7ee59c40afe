package handlers

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/static"
	"github.com/dreamseed/messenger/views"
)

// serviceWorker serves /sw.js from the site's root, so its scope can be / (every page, the
// notification click's tab). The words it shows come from the translation table, written
// before the script. Never cached: a new version must reach browsers at once (they also
// check it themselves at most every 24 hours).
func (s *Server) serviceWorker() echo.HandlerFunc {
	words := map[string]map[string]string{}
	for _, lang := range []string{"ko", "en"} {
		ctx := views.WithLocale(context.Background(), lang)
		words[lang] = map[string]string{"app": views.T(ctx, "push.sw.app"), "several": views.T(ctx, "push.sw.several")}
	}
	prefix, _ := json.Marshal(words)
	code, err := fs.ReadFile(static.FS, "sw.js")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	script := append(append([]byte("const WORDS = "), prefix...), ";\n"...)
	script = append(script, code...)
	return func(c *echo.Context) error {
		h := c.Response().Header()
		h.Set("Service-Worker-Allowed", "/")
		h.Set("Cache-Control", "no-cache")
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", script)
	}
}

// webManifest describes the messenger as an installable app (the Home Screen on iOS, which
// Web Push needs there): Korean name and short name, icons (maskable too), theme colour.
func (s *Server) webManifest() echo.HandlerFunc {
	ctx := views.WithLocale(context.Background(), "ko")
	icon := func(src, size, purpose string) map[string]string {
		return map[string]string{"src": src + s.assetQ, "sizes": size, "type": "image/png", "purpose": purpose}
	}
	body, _ := json.Marshal(map[string]any{
		"id": "/", "name": views.T(ctx, "manifest.name"), "short_name": views.T(ctx, "manifest.short_name"),
		"description": views.T(ctx, "manifest.description"), "lang": "ko", "dir": "ltr",
		"start_url": "/", "scope": "/", "display": "standalone",
		"theme_color": "#0f766e", "background_color": "#f1f5f9",
		"icons": []map[string]string{
			icon("/static/icon-192.png", "192x192", "any"), icon("/static/icon-512.png", "512x512", "any"),
			icon("/static/icon-maskable-192.png", "192x192", "maskable"), icon("/static/icon-maskable-512.png", "512x512", "maskable"),
		},
	})
	return func(c *echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return c.Blob(http.StatusOK, "application/manifest+json", body)
	}
}
