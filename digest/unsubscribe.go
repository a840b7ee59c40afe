package digest

import (
	"context"
	htmltemplate "html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/views"
)

// Unsubscriber serves the digest's one-click unsubscribe link, /unsubscribe?t=TOKEN: GET
// shows a confirmation (link scanners and prefetchers only GET, so GET changes nothing);
// POST — the button, or a mail client's RFC 8058 one-click POST — turns the user's email
// off. The signed token is the only authority (no session: the mail is read anywhere); it
// expires and works once.
type Unsubscriber struct {
	db     *store.DB
	secret []byte
	logger *slog.Logger
	now    func() time.Time
}

// NewUnsubscriber builds the handler; secret is the one digests sign their links with.
func NewUnsubscriber(db *store.DB, secret []byte, logger *slog.Logger) *Unsubscriber {
	return &Unsubscriber{db: db, secret: secret, logger: logger, now: time.Now}
}

// unsubPage uses only classes static/app.css already has (Tailwind does not scan this
// package).
var unsubPage = htmltemplate.Must(htmltemplate.New("unsub").Parse(`<!DOCTYPE html>
<html lang="{{.Locale}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}}</title><link rel="stylesheet" href="/static/app.css"></head>
<body class="bg-slate-50 text-slate-900"><main class="mx-auto max-w-md p-6">
<h1 class="text-lg font-semibold mb-3">{{.Title}}</h1>
<p class="mb-3" id="unsubscribe-message">{{.Text}}</p>
{{if .Token}}<form method="post" action="/unsubscribe"><input type="hidden" name="t" value="{{.Token}}">
<button type="submit" class="rounded-lg bg-blue-600 px-4 py-2 text-white">{{.Button}}</button></form>{{end}}
</main></body></html>
`))

type unsubView struct {
	Locale, Title, Text, Button, Token string
}

func (u *Unsubscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("t")
	if r.Method == http.MethodPost && raw == "" {
		raw = r.PostFormValue("t")
	}
	ctx := r.Context()
	tok, err := parseToken(u.secret, raw, u.now())
	if err != nil {
		u.page(w, ctx, http.StatusBadRequest, "", "unsubscribe.invalid", "")
		return
	}
	rec, err := u.db.DigestRecipientOf(ctx, tok.UserID)
	if err != nil {
		u.page(w, ctx, http.StatusBadRequest, "", "unsubscribe.invalid", "")
		return
	}
	locale := views.NegotiateLocale(rec.Locale, r.Header.Get("Accept-Language"))
	var used, done bool
	err = u.db.InTx(ctx, rec.Identity, func(tx *store.Tx) error {
		if r.Method != http.MethodPost {
			var err error
			used, err = tx.UnsubscribeUsed(ctx, tok.nonceHash())
			return err
		}
		fresh, err := tx.UseUnsubscribe(ctx, tok.nonceHash(), tok.Expires)
		if err != nil || !fresh {
			used = !fresh
			return err
		}
		done = true
		return tx.TurnEmailOff(ctx)
	})
	switch {
	case err != nil:
		u.logger.ErrorContext(r.Context(), "unsubscribe", slog.String("error", err.Error()))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	case used:
		u.page(w, ctx, http.StatusGone, locale, "unsubscribe.invalid", "")
	case done:
		u.page(w, ctx, http.StatusOK, locale, "unsubscribe.done", "")
	default:
		u.page(w, ctx, http.StatusOK, locale, "unsubscribe.confirm", raw)
	}
}

func (u *Unsubscriber) page(w http.ResponseWriter, ctx context.Context, status int, locale, textKey, token string) {
	lctx := views.WithLocale(ctx, locale)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = unsubPage.Execute(w, unsubView{
		Locale: views.Locale(lctx), Title: views.T(lctx, "unsubscribe.title"),
		Text: views.T(lctx, textKey), Button: views.T(lctx, "unsubscribe.button"), Token: token,
	})
}
