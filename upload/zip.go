package upload

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"io"
	"strings"

	"github.com/dreamseed/messenger"
)

// The main part of each OOXML kind: its name and content type. The macro-enabled
// variants (docm, xlsm, pptm) and templates declare other types and are refused.
var ooxmlMain = []struct {
	kind        Kind
	part        string
	contentType string
}{
	{DOCX, "word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"},
	{XLSX, "xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"},
	{PPTX, "ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"},
}

// maxSmallPart bounds what is read of [Content_Types].xml and HWPX's mimetype: the only
// parts Detect decompresses.
const maxSmallPart = 1 << 20

func badZip() error {
	return messenger.Errorf(messenger.EINVALID, "error.document.damaged")
}

// detectZip accepts a zip only as a DOCX, XLSX, PPTX or HWPX. The bomb guard reads the
// central directory's entry count first (from the end record, before archive/zip reads
// every entry), then each entry's declared sizes; archive/zip refuses to read an entry past
// its declared size, so those numbers hold for whoever decompresses later.
func detectZip(r io.ReaderAt, size int64, limits Limits) (Info, error) {
	entries, err := zipEntryCount(r, size)
	if err != nil {
		return Info{}, err
	}
	if entries > limits.MaxZipEntries {
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.document.too_many_parts", limits.MaxZipEntries)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Info{}, badZip()
	}
	files := map[string]*zip.File{}
	var total uint64
	for _, f := range zr.File {
		if !safeZipName(f.Name) {
			return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.document.unsafe_name")
		}
		if files[f.Name] != nil {
			return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.document.duplicate")
		}
		files[f.Name] = f
		if f.Method != zip.Store && f.Method != zip.Deflate {
			return Info{}, badZip()
		}
		total += f.UncompressedSize64
		if total > uint64(limits.MaxZipUncompressed) {
			return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.document.too_large", humanBytes(limits.MaxZipUncompressed))
		}
		if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64 > uint64(limits.MaxZipRatio)*max(f.CompressedSize64, 1) {
			return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.document.zip_bomb")
		}
		lower := strings.ToLower(f.Name)
		if strings.HasSuffix(lower, "vbaproject.bin") || strings.HasSuffix(lower, "vbadata.xml") {
			return Info{}, macroRefused()
		}
	}
	if f := files["mimetype"]; f != nil {
		mt, err := readSmall(f)
		if err != nil {
			return Info{}, badZip()
		}
		if string(mt) == "application/hwp+zip" && files["Contents/content.hpf"] != nil {
			return Info{Kind: HWPX}, nil
		}
	}
	if f := files["[Content_Types].xml"]; f != nil {
		return detectOOXML(f, files)
	}
	return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.zip")
}

func macroRefused() error {
	return messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.macros")
}

func detectOOXML(ct *zip.File, files map[string]*zip.File) (Info, error) {
	raw, err := readSmall(ct)
	if err != nil {
		return Info{}, badZip()
	}
	var types struct {
		Defaults []struct {
			ContentType string `xml:"ContentType,attr"`
		} `xml:"Default"`
		Overrides []struct {
			PartName    string `xml:"PartName,attr"`
			ContentType string `xml:"ContentType,attr"`
		} `xml:"Override"`
	}
	if err := xml.Unmarshal(raw, &types); err != nil {
		return Info{}, badZip()
	}
	declared := map[string]string{}
	for _, d := range types.Defaults {
		if isMacroType(d.ContentType) {
			return Info{}, macroRefused()
		}
	}
	for _, o := range types.Overrides {
		if isMacroType(o.ContentType) {
			return Info{}, macroRefused()
		}
		declared[strings.TrimPrefix(o.PartName, "/")] = o.ContentType
	}
	for _, m := range ooxmlMain {
		if declared[m.part] == m.contentType && files[m.part] != nil {
			return Info{Kind: m.kind}, nil
		}
	}
	return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.office_kind")
}

// isMacroType recognises the content types of macro-enabled documents and VBA projects.
func isMacroType(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.Contains(ct, "macroenabled") || strings.Contains(ct, "vbaproject") || strings.Contains(ct, "ms-office.activex")
}

// readSmall decompresses one entry, at most maxSmallPart bytes of it.
func readSmall(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxSmallPart {
		return nil, errCorrupt
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxSmallPart))
}

// safeZipName refuses entry names that would climb out of a folder or name a root if
// anyone ever unpacked the file: absolute paths, backslashes, drive letters, "..", NUL.
func safeZipName(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") {
		return false
	}
	if len(name) >= 2 && name[1] == ':' {
		return false
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return false
		}
	}
	return true
}

// zipEntryCount reads the end-of-central-directory record, which must end the file (no
// trailing data, no archive comment hiding another file), and answers its entry count.
func zipEntryCount(r io.ReaderAt, size int64) (int, error) {
	const eocdLen = 22
	tail := make([]byte, min(size, eocdLen+0xFFFF))
	if _, err := r.ReadAt(tail, size-int64(len(tail))); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if i < 0 || len(tail)-i < eocdLen {
		return 0, badZip()
	}
	rec := tail[i:]
	if commentLen := int(binary.LittleEndian.Uint16(rec[20:22])); i+eocdLen+commentLen != len(tail) {
		return 0, messenger.Errorf(messenger.EUNSUPPORTED, "error.document.trailing")
	}
	n := int(binary.LittleEndian.Uint16(rec[10:12]))
	if n == 0xFFFF { // zip64: only needed beyond 65,534 entries, far past any limit
		return 1 << 30, nil
	}
	return n, nil
}
