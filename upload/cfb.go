package upload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/dreamseed/messenger"
)

// cfbSignature starts every OLE2 compound file (CFB): HWP 5, but also old .doc, .xls, .ppt
// and .msi, which are refused.
var cfbSignature = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

var hwpSignature = []byte("HWP Document File")

// Special sector numbers of CFB chains.
const (
	cfbEndOfChain = 0xFFFFFFFE
	cfbFree       = 0xFFFFFFFF
)

// detectCFB accepts a compound file as HWP when its directory has a stream named
// "FileHeader" whose content starts "HWP Document File" (HWP 5.0 file format, §3.2).
func detectCFB(r io.ReaderAt, size int64) (Info, error) {
	header, err := readCFBFileHeader(r, size)
	if err != nil || !bytes.HasPrefix(header, hwpSignature) {
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.old_office")
	}
	return Info{Kind: HWP}, nil
}

var errCFB = errors.New("upload: malformed compound file")

// readCFBFileHeader follows the compound file's FAT to its directory, finds the stream
// "FileHeader" and answers its first 32 bytes, from the mini stream when it is small (as
// it always is: 256 bytes). Every chain walk is bounded by the number of sectors, so a
// looping FAT cannot hang it.
func readCFBFileHeader(r io.ReaderAt, size int64) ([]byte, error) {
	h := make([]byte, 512)
	if _, err := r.ReadAt(h, 0); err != nil {
		return nil, errCFB
	}
	le := binary.LittleEndian
	shift := le.Uint16(h[0x1E:])
	if shift != 9 && shift != 12 || le.Uint16(h[0x20:]) != 6 {
		return nil, errCFB
	}
	sectorSize := int64(1) << shift
	sectors := (size + sectorSize - 1) / sectorSize // an upper bound on any chain's length
	at := func(sector uint32) int64 { return (int64(sector) + 1) * sectorSize }
	readSector := func(sector uint32) ([]byte, error) {
		if int64(sector) >= sectors {
			return nil, errCFB
		}
		b := make([]byte, sectorSize)
		if n, err := r.ReadAt(b, at(sector)); n < len(b) && err != nil {
			return nil, errCFB
		}
		return b, nil
	}
	// The FAT's own sectors: 109 in the header, the rest in the DIFAT chain.
	numFAT := int64(le.Uint32(h[0x2C:]))
	if numFAT > sectors/(sectorSize/4)+1 { // more FAT than the file has sectors to map
		return nil, errCFB
	}
	if numFAT == 0 {
		return nil, errCFB
	}
	var fatSectors []uint32
	for i := 0; i < 109 && int64(len(fatSectors)) < numFAT; i++ {
		fatSectors = append(fatSectors, le.Uint32(h[0x4C+4*i:]))
	}
	for difat, steps := le.Uint32(h[0x44:]), int64(0); int64(len(fatSectors)) < numFAT; steps++ {
		if difat == cfbEndOfChain || steps > sectors {
			return nil, errCFB
		}
		b, err := readSector(difat)
		if err != nil {
			return nil, err
		}
		for i := int64(0); i < sectorSize/4-1 && int64(len(fatSectors)) < numFAT; i++ {
			fatSectors = append(fatSectors, le.Uint32(b[4*i:]))
		}
		difat = le.Uint32(b[sectorSize-4:])
	}
	var fat []uint32
	for _, s := range fatSectors {
		b, err := readSector(s)
		if err != nil {
			return nil, err
		}
		for i := int64(0); i < sectorSize; i += 4 {
			fat = append(fat, le.Uint32(b[i:]))
		}
	}
	// chain answers the sectors of the chain starting at first.
	chain := func(first uint32) ([]uint32, error) {
		var out []uint32
		for s := first; s != cfbEndOfChain; s = fat[s] {
			if int64(s) >= int64(len(fat)) || int64(len(out)) > sectors {
				return nil, errCFB
			}
			out = append(out, s)
		}
		return out, nil
	}
	dirSectors, err := chain(le.Uint32(h[0x30:]))
	if err != nil || len(dirSectors) == 0 {
		return nil, errCFB
	}
	var root, fileHeader []byte
	for _, s := range dirSectors {
		b, err := readSector(s)
		if err != nil {
			return nil, err
		}
		for e := int64(0); e < sectorSize; e += 128 {
			entry := b[e : e+128]
			switch {
			case entry[0x42] == 5 && root == nil:
				root = entry
			case entry[0x42] == 2 && cfbEntryName(entry) == "FileHeader":
				fileHeader = entry
			}
		}
	}
	if root == nil || fileHeader == nil {
		return nil, errCFB
	}
	start, streamSize := le.Uint32(fileHeader[0x74:]), le.Uint32(fileHeader[0x78:])
	if streamSize < 32 {
		return nil, errCFB
	}
	out := make([]byte, 32)
	if streamSize >= le.Uint32(h[0x38:]) { // a regular stream: its first sector
		if int64(start) >= sectors {
			return nil, errCFB
		}
		if _, err := r.ReadAt(out, at(start)); err != nil {
			return nil, errCFB
		}
		return out, nil
	}
	// A small stream lives in the mini stream (the root's chain) in 64-byte mini sectors;
	// its first 32 bytes are inside its first mini sector.
	miniStream, err := chain(le.Uint32(root[0x74:]))
	if err != nil {
		return nil, errCFB
	}
	offset := int64(start) * 64
	if offset/sectorSize >= int64(len(miniStream)) {
		return nil, errCFB
	}
	if _, err := r.ReadAt(out, at(miniStream[offset/sectorSize])+offset%sectorSize); err != nil {
		return nil, errCFB
	}
	return out, nil
}

// cfbEntryName decodes a directory entry's UTF-16LE name (ASCII is all HWP needs).
func cfbEntryName(entry []byte) string {
	n := int(binary.LittleEndian.Uint16(entry[0x40:]))
	if n < 2 || n > 64 {
		return ""
	}
	name := make([]byte, 0, n/2)
	for i := 0; i+1 < n-2; i += 2 {
		if entry[i+1] != 0 {
			return ""
		}
		name = append(name, entry[i])
	}
	return string(name)
}
