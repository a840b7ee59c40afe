package digest

import (
	"bytes"
	"context"
	htmltemplate "html/template"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/views"
)

// Limits of one digest: conversations shown (the others are counted), messages shown per
// conversation, characters of a preview.
const (
	maxConversations = 10
	latestPerConv    = 3
	previewRunes     = 100
)

// content is what one digest says, in the recipient's language.
type content struct {
	Locale      string
	Subject     string
	Greeting    string
	Convs       []convContent
	More        string // "N more conversations…", or ""
	Why         string
	Unsubscribe string // its words
	UnsubURL    string
}

type convContent struct {
	Title  string
	Unread string
	URL    string
	Open   string
	Lines  []line // oldest first
}

type line struct {
	Sender, Time, Preview string
}

// preview is a message's one line: its text cut to previewRunes, "사진" or "파일: name" for
// files, a system notice in the reader's words.
func preview(ctx context.Context, m messenger.Message) string {
	var s string
	switch {
	case m.Event != nil:
		s = views.SystemText(ctx, *m.Event)
	case m.Kind == "file" || len(m.Files) > 0 || m.Deleted:
		s = views.FilePreview(ctx, m)
	default:
		s = m.Body
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > previewRunes {
		r := []rune(s)
		s = string(r[:previewRunes]) + "…"
	}
	return s
}

// stamp is a message's time in Seoul, with its date (a digest spans days).
func stamp(ctx context.Context, t time.Time) string {
	return t.In(views.Seoul).Format(views.T(ctx, "time.layout.stamp"))
}

var textTmpl = template.Must(template.New("text").Parse(`{{.Greeting}}
{{range .Convs}}
■ {{.Title}} ({{.Unread}})
{{range .Lines}}  {{.Time}} {{.Sender}}: {{.Preview}}
{{end}}  {{.Open}}: {{.URL}}
{{end}}{{if .More}}
{{.More}}
{{end}}
--
{{.Why}}
{{.Unsubscribe}}: {{.UnsubURL}}
`))

// The HTML part: inline CSS only (mail clients drop <style> and external sheets), no image.
var htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Locale}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Subject}}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:-apple-system,'Apple SD Gothic Neo','Malgun Gothic',sans-serif;color:#1f2937">
<div style="max-width:560px;margin:0 auto;padding:24px 16px">
<h1 style="font-size:18px;margin:0 0 16px">{{.Greeting}}</h1>
{{range .Convs}}<div style="background:#ffffff;border-radius:12px;padding:16px;margin:0 0 12px">
<h2 style="font-size:16px;margin:0 0 4px">{{.Title}}</h2>
<p style="font-size:13px;color:#dc2626;margin:0 0 8px">{{.Unread}}</p>
{{range .Lines}}<p style="font-size:14px;margin:0 0 6px"><span style="color:#6b7280">{{.Time}}</span> <strong>{{.Sender}}</strong>: {{.Preview}}</p>
{{end}}<p style="margin:12px 0 0"><a href="{{.URL}}" style="display:inline-block;background:#0f766e;color:#ffffff;text-decoration:none;padding:8px 16px;border-radius:8px;font-size:14px">{{.Open}}</a></p>
</div>
{{end}}{{if .More}}<p style="font-size:14px">{{.More}}</p>{{end}}
<p style="font-size:12px;color:#6b7280;margin-top:24px">{{.Why}}<br><a href="{{.UnsubURL}}" style="color:#6b7280">{{.Unsubscribe}}</a></p>
</div></body></html>
`))

// render answers the text and HTML parts of c.
func render(c content) (text, html string, err error) {
	var tb, hb bytes.Buffer
	if err := textTmpl.Execute(&tb, c); err != nil {
		return "", "", err
	}
	if err := htmlTmpl.Execute(&hb, c); err != nil {
		return "", "", err
	}
	return tb.String(), hb.String(), nil
}
