package views

import (
	"context"
	"strings"
	"testing"

	"github.com/dreamseed/messenger"
)

func TestHumanSize(t *testing.T) {
	ko, en := WithLocale(context.Background(), "ko"), WithLocale(context.Background(), "en")
	for _, tc := range []struct {
		n      int64
		ko, en string
	}{
		{0, "0B", "0 B"}, {532, "532B", "532 B"}, {1536, "1.5KB", "1.5 KB"}, {10 << 20, "10MB", "10 MB"},
		{3_565_158, "3.4MB", "3.4 MB"}, {250 << 10, "250KB", "250 KB"}, {2 << 30, "2GB", "2 GB"},
	} {
		if got := HumanSize(ko, tc.n); got != tc.ko {
			t.Errorf("HumanSize(ko, %d) = %q, want %q", tc.n, got, tc.ko)
		}
		if got := HumanSize(en, tc.n); got != tc.en {
			t.Errorf("HumanSize(en, %d) = %q, want %q", tc.n, got, tc.en)
		}
	}
}

func TestFilePreview(t *testing.T) {
	ko, en := WithLocale(context.Background(), "ko"), WithLocale(context.Background(), "en")
	img := messenger.File{Name: "a.jpg", State: messenger.FileClean, Variants: []messenger.Variant{{Size: messenger.ThumbMedium}}}
	pdf := messenger.File{Name: "안내문.pdf", State: messenger.FileClean}
	gone := messenger.File{Name: "b.jpg", State: messenger.FileDeleted, Variants: img.Variants}
	for _, tc := range []struct {
		m      messenger.Message
		ko, en string
	}{
		{messenger.Message{Kind: messenger.MessageFile, Files: []messenger.File{img}}, "사진", "Photo"},
		{messenger.Message{Kind: messenger.MessageFile, Files: []messenger.File{img, img, img}}, "사진 3장", "3 photos"},
		{messenger.Message{Kind: messenger.MessageFile, Files: []messenger.File{pdf}}, "파일: 안내문.pdf", "File: 안내문.pdf"},
		{messenger.Message{Kind: messenger.MessageFile, Files: []messenger.File{img, pdf}}, "파일 2개", "2 files"},
		{messenger.Message{Kind: messenger.MessageFile, Files: []messenger.File{gone, pdf}}, "파일: 안내문.pdf", "File: 안내문.pdf"},
		{messenger.Message{Kind: messenger.MessageFile, Deleted: true}, "삭제된 파일입니다", "This file was deleted"},
	} {
		if got := MessageText(ko, tc.m); got != tc.ko {
			t.Errorf("ko preview %q, want %q", got, tc.ko)
		}
		if got := MessageText(en, tc.m); got != tc.en {
			t.Errorf("en preview %q, want %q", got, tc.en)
		}
	}
}

func TestDocKindOf(t *testing.T) {
	for ct, want := range map[string]string{
		"application/pdf": "PDF", "text/plain; charset=utf-8": "TXT", "application/x-hwp": "HWP", "application/hwp+zip": "HWP",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   "DOC",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         "XLS",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation": "PPT",
		"application/octet-stream": "FILE",
	} {
		if got := DocKindOf(ct).Label; got != want {
			t.Errorf("DocKindOf(%q) = %s, want %s", ct, got, want)
		}
	}
}

// Every word of the file pages exists in both languages.
func TestFileWordsTranslated(t *testing.T) {
	texts := uploadTexts(context.Background(), UploadLimits{MaxBytes: 10 << 20, MaxFiles: 10})
	for k, v := range texts {
		if v == k || v == "" {
			t.Errorf("upload text %s is not translated", k)
		}
	}
}

// A pending bubble says what became of the upload, in the reader's language, and one
// that ended without a message can be dismissed.
func TestPendingUploadStates(t *testing.T) {
	for _, tc := range []struct {
		state, lang, says string
		dismiss           bool
	}{
		{messenger.UploadScanning, "ko", "안전한 파일인지 검사 중…", false},
		{messenger.UploadScanning, "en", "Scanning for viruses…", false},
		{messenger.UploadInfected, "ko", "안전하지 않은 파일이 있어 보내지 않고 삭제했습니다.", true},
		{messenger.UploadInfected, "en", "A file looked unsafe, so it was deleted and not sent.", true},
		{messenger.UploadFailed, "ko", "파일을 보내지 못했습니다. 다시 첨부해 주세요.", true},
		{messenger.UploadFailed, "en", "The files could not be sent. Please attach them again.", true},
	} {
		u := messenger.Upload{ID: "0b8f5c2e-8a4e-4c1e-9d7b-2f0c3a1e5d6f", ClientMsgID: "c", State: tc.state,
			Files: []messenger.File{{Name: "가정통신문.pdf", ContentType: "application/pdf", Size: 2048}}}
		var b strings.Builder
		if err := PendingUpload(u).Render(WithLocale(context.Background(), tc.lang), &b); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		if !strings.Contains(html, tc.says) || !strings.Contains(html, "가정통신문.pdf") {
			t.Errorf("%s (%s) bubble lacks %q:\n%s", tc.state, tc.lang, tc.says, html)
		}
		if got := strings.Contains(html, `action="/uploads/`+u.ID+`/dismiss"`); got != tc.dismiss {
			t.Errorf("%s bubble: dismiss form %v, want %v", tc.state, got, tc.dismiss)
		}
	}
}
