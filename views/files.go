package views

import (
	"context"
	"fmt"
	"strings"

	"github.com/dreamseed/messenger"
)

// UploadLimits are what the composer tells the browser before it sends anything: the
// server checks again and decides.
type UploadLimits struct {
	MaxBytes int64
	MaxFiles int
}

// AcceptTypes are the kinds the server takes, by type and by name: the composer's file
// chooser filter, and what app.js checks a chosen file against (data-accept) for an early
// word to the user. The server decides by content.
const AcceptTypes = "image/png,image/jpeg,image/webp,image/gif,application/pdf,text/plain," +
	".png,.jpg,.jpeg,.webp,.gif,.pdf,.docx,.xlsx,.pptx,.hwp,.hwpx,.txt"

// FileURL answers the page URL of a file's original (a download).
func FileURL(id string) string { return "/files/" + id + "/content" }

// ThumbURL answers the page URL of a file's thumbnail of size.
func ThumbURL(id, size string) string { return "/files/" + id + "/thumbnail/" + size }

// ImageSrcset answers the srcset of an image in a bubble: the medium thumbnail at 1x, the
// large one at 2x.
func ImageSrcset(f messenger.File) string {
	s := ThumbURL(f.ID, messenger.ThumbMedium) + " 1x"
	if _, ok := f.Variant(messenger.ThumbLarge); ok {
		s += ", " + ThumbURL(f.ID, messenger.ThumbLarge) + " 2x"
	}
	return s
}

// ViewerSize answers the thumbnail the full-screen viewer shows and its size: the large
// one, or the biggest the image has.
func ViewerSize(f messenger.File) (string, messenger.Variant) {
	for i := len(messenger.ThumbSizes) - 1; i >= 0; i-- {
		if v, ok := f.Variant(messenger.ThumbSizes[i]); ok {
			return messenger.ThumbSizes[i], v
		}
	}
	return messenger.ThumbLarge, messenger.Variant{}
}

// MediumSize answers the width and height of an image's bubble thumbnail, so the page
// reserves its place before it loads.
func MediumSize(f messenger.File) (int64, int64) {
	if v, ok := f.Variant(messenger.ThumbMedium); ok && v.Width > 0 && v.Height > 0 {
		return int64(v.Width), int64(v.Height)
	}
	w, h := messenger.FitBox(f.Width, f.Height, messenger.ThumbEdge(messenger.ThumbMedium))
	return int64(w), int64(h)
}

// liveFiles answers the files of a message that are still there (not deleted by their
// sender), split into pictures and documents.
func liveFiles(files []messenger.File) (images, docs []messenger.File) {
	for _, f := range files {
		switch {
		case f.State == messenger.FileDeleted:
		case f.IsImage():
			images = append(images, f)
		default:
			docs = append(docs, f)
		}
	}
	return images, docs
}

// firstLiveFile answers the id of a message's first file not deleted ("" if none).
func firstLiveFile(files []messenger.File) string {
	for _, f := range files {
		if f.State != messenger.FileDeleted {
			return f.ID
		}
	}
	return ""
}

// gridClass lays out n pictures of one message: one alone at its own aspect ratio, two
// side by side, more in rows of three (KakaoTalk's album).
func gridClass(n int) string {
	switch {
	case n <= 1:
		return "grid-cols-1"
	case n == 2 || n == 4:
		return "grid-cols-2"
	default:
		return "grid-cols-3"
	}
}

// DocKind is how a document card looks: a short label and its colors.
type DocKind struct {
	Label string // on the icon: PDF, DOC, XLS, PPT, HWP, TXT
	Class string // the icon's Tailwind colors
}

// DocKindOf answers the card look of a file by its (content-decided) type.
func DocKindOf(contentType string) DocKind {
	ct, _, _ := strings.Cut(contentType, ";")
	switch strings.TrimSpace(ct) {
	case "application/pdf":
		return DocKind{"PDF", "bg-rose-600"}
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return DocKind{"DOC", "bg-blue-600"}
	case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return DocKind{"XLS", "bg-emerald-700"}
	case "application/vnd.openxmlformats-officedocument.presentationml.presentation":
		return DocKind{"PPT", "bg-orange-700"}
	case "application/x-hwp", "application/hwp+zip":
		return DocKind{"HWP", "bg-sky-700"}
	case "text/plain":
		return DocKind{"TXT", "bg-slate-500"}
	case "image/png", "image/jpeg", "image/webp", "image/gif":
		return DocKind{"IMG", "bg-violet-600"}
	}
	return DocKind{"FILE", "bg-slate-500"}
}

// HumanSize formats a byte count for people: "532 B", "12 KB", "3.4 MB" (one decimal
// below 10 of a unit). Korean writes the unit without a space: "3.4MB".
func HumanSize(ctx context.Context, n int64) string {
	sep := " "
	if Locale(ctx) != "en" {
		sep = ""
	}
	units := []string{"B", "KB", "MB", "GB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	switch {
	case u == 0:
		return fmt.Sprintf("%d%s%s", n, sep, units[0])
	case v < 10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + sep + units[u]
	}
	return fmt.Sprintf("%.0f%s%s", v, sep, units[u])
}

// FilePreview is the list's one line for a file message: "사진", "사진 3장", "파일: 이름.pdf",
// or the tombstone.
func FilePreview(ctx context.Context, m messenger.Message) string {
	if m.Deleted {
		return T(ctx, "file.deleted")
	}
	images, docs := liveFiles(m.Files)
	switch {
	case len(images) == 1 && len(docs) == 0:
		return T(ctx, "file.preview.photo")
	case len(images) > 1 && len(docs) == 0:
		return Tf(ctx, "file.preview.photos", len(images))
	case len(docs) == 1 && len(images) == 0:
		return Tf(ctx, "file.preview.file", docs[0].Name)
	case len(docs)+len(images) > 1:
		return Tf(ctx, "file.preview.files", len(docs)+len(images))
	}
	if m.Body != "" {
		return m.Body
	}
	return T(ctx, "file.preview.file_plain")
}

// uploadFailed reports whether a pending upload ended without a message.
func uploadFailed(u messenger.Upload) bool {
	return u.State == messenger.UploadInfected || u.State == messenger.UploadFailed
}

// UploadProblem answers what a user reads about a refused upload, by the error's code.
func UploadProblem(ctx context.Context, err error, maxBytes int64) string {
	switch messenger.ErrorCode(err) {
	case messenger.ETOOLARGE:
		return Tf(ctx, "upload.too_large", HumanSize(ctx, maxBytes))
	case messenger.EUNSUPPORTED:
		return T(ctx, "upload.unsupported")
	case messenger.ERATELIMITED:
		return T(ctx, "composer.rate_limited")
	case messenger.EINVALID:
		return T(ctx, "upload.invalid")
	case messenger.ENOTFOUND, messenger.EFORBIDDEN:
		return T(ctx, "upload.forbidden")
	}
	return T(ctx, "upload.failed")
}

// uploadTexts are the words app.js needs for the attach flow, in the page's language.
func uploadTexts(ctx context.Context, l UploadLimits) map[string]string {
	keys := []string{"attach.remove", "attach.too_large", "attach.type", "attach.heic", "attach.too_many",
		"attach.empty", "upload.sending", "upload.cancel", "upload.retry", "upload.dismiss", "upload.failed",
		"upload.too_large", "upload.unsupported", "upload.invalid", "upload.forbidden", "composer.rate_limited",
		"composer.too_long", "file.delete.failed"}
	out := make(map[string]string, len(keys)+1)
	for _, k := range keys {
		out[k] = T(ctx, k)
	}
	out["max"] = HumanSize(ctx, l.MaxBytes)
	out["upload.too_large"] = Tf(ctx, "upload.too_large", out["max"])
	return out
}

// rowWidth is how much of a phone's width a message takes: files a little more than text,
// so a document's name has room.
func rowWidth(m messenger.Message) string {
	if m.Kind == messenger.MessageFile {
		return "w-file"
	}
	return "w-msg"
}

// isPicture reports whether a content type is one of the pictures shown inline.
func isPicture(contentType string) bool {
	return DocKindOf(contentType).Label == "IMG"
}
