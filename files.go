package messenger

import "time"

// File states. A file is uploaded, then scanned; only a clean file is ever shown to anyone
// but its uploader. A deleted file keeps its row (the message's tombstone), not its bytes.
const (
	FileUploaded = "uploaded" // stored, the scan job not started
	FileScanning = "scanning"
	FileClean    = "clean"
	FileInfected = "infected" // the scanner found something: the bytes are deleted
	FileFailed   = "failed"   // could not be scanned or processed for good
	FileDeleted  = "deleted"  // its sender deleted it
)

// Upload states: an upload becomes a message once every file of it is clean.
const (
	UploadScanning = "scanning" // its files are being scanned and thumbnailed
	UploadClean    = "clean"    // its message is stored (MessageID)
	UploadInfected = "infected" // a file was infected: no message, nothing kept
	UploadFailed   = "failed"   // no message (the uploader left, a file could not be read)
)

// Thumbnail sizes: the names the API uses and the edge of their box, in pixels.
const (
	ThumbSmall  = "small"  // 100×100
	ThumbMedium = "medium" // 300×300
	ThumbLarge  = "large"  // 600×600
)

// ThumbSizes are the thumbnail sizes in order, smallest first.
var ThumbSizes = []string{ThumbSmall, ThumbMedium, ThumbLarge}

// ThumbEdge answers the box edge of a thumbnail size, 0 for an unknown size.
func ThumbEdge(size string) int {
	switch size {
	case ThumbSmall:
		return 100
	case ThumbMedium:
		return 300
	case ThumbLarge:
		return 600
	}
	return 0
}

// Variant is a derived image of a file (a WebP thumbnail).
type Variant struct {
	Size   string `json:"size"` // ThumbSmall, ThumbMedium, ThumbLarge
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Bytes  int64  `json:"bytes"`
}

// File is one uploaded file: an attachment of a file message once it is clean.
type File struct {
	ID             string // UUID
	UploadID       string
	ConversationID int64
	MessageID      int64 // 0 until its message is stored
	OwnerID        int64
	Name           string // cleaned, NFC
	ContentType    string // decided from the content
	Size           int64
	SHA256         string // lowercase hex
	Width, Height  int    // images, as shown (EXIF orientation applied)
	State          string
	Scanned        bool // false: stored while no scanner was configured (development only)
	Variants       []Variant
	CreatedAt      time.Time
}

// IsImage reports whether the file is a picture shown inline (it has thumbnails).
func (f File) IsImage() bool { return len(f.Variants) > 0 }

// Variant answers the variant of size, if the file has it.
func (f File) Variant(size string) (Variant, bool) {
	for _, v := range f.Variants {
		if v.Size == size {
			return v, true
		}
	}
	return Variant{}, false
}

// Upload is a set of files a user sent to a conversation with one caption: not yet a
// message while its files are scanned. It stays visible to its uploader only.
type Upload struct {
	ID             string // UUID
	ConversationID int64
	UploaderID     int64
	ClientMsgID    string
	Caption        string
	State          string
	MessageID      int64 // its message once clean
	Files          []File
	CreatedAt      time.Time
	// Dismissed: the uploader took its bubble (infected or failed) out of the thread.
	Dismissed bool
}

// APIFile is a file in the API and in events.
type APIFile struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	ContentType string            `json:"content_type"`
	Size        int64             `json:"size"`
	State       string            `json:"state"`
	Scanned     bool              `json:"scanned"`
	Width       int               `json:"width,omitempty"`
	Height      int               `json:"height,omitempty"`
	Thumbnails  map[string]string `json:"thumbnails,omitempty"`
}

// APIUpload is an upload in the API and in upload.updated events.
type APIUpload struct {
	ID             string    `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	ClientMsgID    string    `json:"client_msg_id"`
	Caption        string    `json:"caption"`
	State          string    `json:"state"`
	MessageID      *int64    `json:"message_id,omitempty"`
	Files          []APIFile `json:"files"`
	CreatedAt      time.Time `json:"created_at"`
	// Dismissed: the uploader took it out of the thread (an infected or failed upload).
	Dismissed bool `json:"dismissed,omitempty"`
}

// API answers the file's API shape; thumbnail URLs are under the JSON API.
func (f File) API() APIFile {
	out := APIFile{ID: f.ID, Name: f.Name, ContentType: f.ContentType, Size: f.Size, State: f.State,
		Scanned: f.Scanned, Width: f.Width, Height: f.Height}
	if f.State == FileClean && len(f.Variants) > 0 {
		out.Thumbnails = make(map[string]string, len(f.Variants))
		for _, v := range f.Variants {
			out.Thumbnails[v.Size] = "/api/v1/files/" + f.ID + "/thumbnail/" + v.Size
		}
	}
	return out
}

// API answers the upload's API shape.
func (u Upload) API() APIUpload {
	out := APIUpload{ID: u.ID, ConversationID: u.ConversationID, ClientMsgID: u.ClientMsgID,
		Caption: u.Caption, State: u.State, Files: apiFiles(u.Files), CreatedAt: u.CreatedAt.UTC(), Dismissed: u.Dismissed}
	if u.MessageID != 0 {
		id := u.MessageID
		out.MessageID = &id
	}
	return out
}

func apiFiles(files []File) []APIFile {
	out := make([]APIFile, 0, len(files))
	for _, f := range files {
		out = append(out, f.API())
	}
	return out
}

// fitBox answers w×h scaled to fit inside an edge×edge box (never enlarged).
func FitBox(w, h, edge int) (int, int) {
	if w <= 0 || h <= 0 {
		return edge, edge
	}
	if w <= edge && h <= edge {
		return w, h
	}
	if w >= h {
		return edge, max(1, h*edge/w)
	}
	return max(1, w*edge/h), edge
}
