package views

import (
	"context"
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
	for key, m := range messages {
		if m.ko == "" || m.en == "" {
			t.Errorf("%s lacks a language", key)
		}
	}
	texts := uploadTexts(context.Background(), UploadLimits{MaxBytes: 10 << 20, MaxFiles: 10})
	for k, v := range texts {
		if v == k || v == "" {
			t.Errorf("upload text %s is not translated", k)
		}
	}
}
