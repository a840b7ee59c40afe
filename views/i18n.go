// Package views holds the templ components of the messenger's pages and partials, and the
// small formatting helpers they share (translations, times, avatars, links).
package views

import (
	"context"
	"strings"

	"github.com/dreamseed/messenger"
)

type localeKey struct{}

// WithLocale answers a context whose pages render in locale ("ko" or "en").
func WithLocale(ctx context.Context, locale string) context.Context {
	return context.WithValue(ctx, localeKey{}, locale)
}

// Locale answers the locale pages render in; Korean unless English was chosen.
func Locale(ctx context.Context) string {
	if l, _ := ctx.Value(localeKey{}).(string); l == "en" {
		return "en"
	}
	return "ko"
}

// NegotiateLocale picks the page locale: the user's own (from the portal) if set, else the
// first of Korean or English the browser's Accept-Language names, else Korean.
func NegotiateLocale(userLocale, acceptLanguage string) string {
	if userLocale == "ko" || userLocale == "en" {
		return userLocale
	}
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		lang, _, _ := strings.Cut(strings.ToLower(tag), "-")
		switch lang {
		case "ko":
			return "ko"
		case "en":
			return "en"
		}
	}
	return "ko"
}

// T answers the text of key in the context's locale, from the one table of the messenger's
// words (messenger.Text).
func T(ctx context.Context, key string) string {
	return messenger.Text(Locale(ctx), key)
}

// Tf answers the text of key in the context's locale with args filled in.
func Tf(ctx context.Context, key string, args ...any) string {
	return messenger.Textf(Locale(ctx), key, args...)
}
