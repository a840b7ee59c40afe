package upload

import (
	"bytes"
	"io"

	"github.com/dreamseed/messenger"
)

// cfbSignature starts every OLE2 compound file: HWP 5, but also old .doc, .xls, .ppt and
// .msi, which are refused.
var cfbSignature = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

var (
	hwpFileHeaderName = []byte("F\x00i\x00l\x00e\x00H\x00e\x00a\x00d\x00e\x00r\x00\x00\x00")
	hwpSignature      = []byte("HWP Document File")
)

// detectCFB accepts a compound file as HWP when it has a directory entry named
// "FileHeader" and a stream starting "HWP Document File". It does not walk the FAT: it
// scans the file (bounded by the size limit, in chunks) for the name where directory
// entries sit (128-byte aligned) and the signature where a mini-stream sector starts
// (64-byte aligned), which every HWP 5 file satisfies and no other compound file does by
// chance. Parsing the chains properly is left for when the viewer needs HWP's content.
func detectCFB(r io.ReaderAt, size int64) (Info, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	var haveName, haveSig bool
	for off := int64(512); off < size && !(haveName && haveSig); off += chunk {
		n, err := r.ReadAt(buf[:min(chunk, size-off)], off)
		if n == 0 && err != nil {
			return Info{}, err
		}
		// Chunks start 64-aligned, so offsets inside them keep their alignment.
		for i := 0; i+len(hwpSignature) <= n; i += 64 {
			if !haveSig && bytes.HasPrefix(buf[i:n], hwpSignature) {
				haveSig = true
			}
			if !haveName && (off+int64(i))%128 == 0 && bytes.HasPrefix(buf[i:n], hwpFileHeaderName) {
				haveName = true
			}
		}
	}
	if haveName && haveSig {
		return Info{Kind: HWP}, nil
	}
	return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "Old Office files (.doc, .xls, .ppt) cannot be sent; save them as .docx, .xlsx or .pptx.")
}
