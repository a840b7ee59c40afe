package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// count answers how many rows query finds acting as u: what row-level security lets
// them see.
func (w wall) count(u messenger.User, query string, args ...any) int {
	w.t.Helper()
	tx := w.begin(u)
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM (`+query+`) AS q`, args...).Scan(&n); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// newUpload records an upload of u with one file (its bytes are not needed here).
func newUpload(t *testing.T, db *store.DB, u messenger.User, convID int64) (uploadID, fileID string) {
	t.Helper()
	nu := store.NewUpload{ID: uuid.NewString(), ConversationID: convID, ClientMsgID: uuid.NewString(),
		Files: []store.NewFile{{ID: uuid.NewString(), Key: storage.NewKey(), Name: "알림장.pdf",
			ContentType: "application/pdf", Size: 10, SHA256: strings.Repeat("a", 64)}}}
	if err := db.InTx(context.Background(), u.Identity(), func(tx *store.Tx) error { return tx.InsertUpload(context.Background(), nu) }); err != nil {
		t.Fatal(err)
	}
	return nu.ID, nu.Files[0].ID
}

// TestFilesWall: the database alone keeps files where they belong. Acting as real users,
// hand-written SQL cannot mark a file clean, link it into a message, give it thumbnails,
// read verdicts or another upload's keys, post a file message or a tombstone directly,
// upload into a conversation they are not in, add files to an upload already recorded,
// or read a file of a conversation they are not in, have left, or of another
// organization.
func TestFilesWall(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)

	sender := storetest.MustSignIn(t, db, "w1", "김민준", "org-a", "zone-a", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "w2", "박지호", "org-a", "zone-a", messenger.RoleParent)
	leaver := storetest.MustSignIn(t, db, "w3", "정하준", "org-a", "zone-a", messenger.RoleStudent)
	outsider := storetest.MustSignIn(t, db, "w4", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	other := storetest.MustSignIn(t, db, "w5", "최유나", "org-b", "zone-b", messenger.RoleTeacher)

	var group int64
	if err := db.InTx(ctx, sender.Identity(), func(tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, "5학년 2반", []int64{member.ID, leaver.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// The sender's file, scanned clean by the job's gate (acting as nobody) and made a
	// message by the sender.
	sentUpload, sent := newUpload(t, db, sender, group)
	if _, err := w.owner.Exec(`SELECT * FROM app_record_scan($1, 'test', 'clean', '', '', 1)`, sent); err != nil {
		t.Fatal(err)
	}
	var fm store.FileMessage
	if err := db.InTx(ctx, sender.Identity(), func(tx *store.Tx) (err error) {
		fm, err = tx.StoreFileMessage(ctx, sentUpload)
		return err
	}); err != nil || !fm.Created {
		t.Fatalf("store the file message: %+v, %v", fm, err)
	}
	// The member's own file, not scanned yet.
	pendingUpload, pending := newUpload(t, db, member, group)

	t.Run("verdicts and links are the gates'", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("a user marking their own file clean", member, `UPDATE files SET state = 'clean', scanned = true WHERE id = $1`, pending)
		w.refused("a user linking their file into a message", member, `UPDATE files SET message_id = $2 WHERE id = $1`, pending, fm.Message.ID)
		w.refused("a user marking their upload clean", member, `UPDATE uploads SET state = 'clean' WHERE id = $1`, pendingUpload)
		w.refused("a user recording a verdict", member, `SELECT * FROM app_record_scan($1, 'me', 'clean', '', '', 1)`, pending)
		w.refused("a user giving their file thumbnails", member, `SELECT app_set_variants($1, '[]', 1, 1)`, pending)
		w.refused("a user reading an upload's storage keys", member, `SELECT * FROM app_file_job($1)`, sentUpload)
		w.refused("a user asking for another file's objects", member, `SELECT app_file_objects($1)`, sent)
		w.refused("a user failing someone's upload", member, `SELECT app_fail_upload($1)`, sentUpload)
		w.refused("a user making their unscanned upload a message", member, `SELECT * FROM app_store_file_message($1)`, pendingUpload)
		w.refused("a user making someone else's upload a message", member, `SELECT * FROM app_store_file_message($1)`, sentUpload)
		w.refused("a user deleting someone else's file", member, `SELECT * FROM app_delete_file($1)`, sent)
		w.refused("a user reading verdicts", member, `SELECT * FROM file_scans`)
		w.refused("a user inserting a clean file", member,
			`INSERT INTO files (id, upload_id, position, conversation_id, org_id, owner_id, storage_key, name, content_type, size, sha256, state)
			 VALUES ($1, $2, 5, $3, $4, $5, 'ab/cd/x/original', 'x.pdf', 'application/pdf', 1, $6, 'clean')`,
			uuid.NewString(), pendingUpload, group, member.OrgID, member.ID, strings.Repeat("b", 64))
		if v := w.value(`SELECT state || ' ' || coalesce(message_id::text, '-') FROM files WHERE id = $1`, pending); v != "uploaded -" {
			t.Errorf("the member's file is now %q", v)
		}
	})

	t.Run("messages and tombstones", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("a file message without an upload", member,
			`INSERT INTO messages (conversation_id, org_id, sender_id, kind, body) VALUES ($1, $2, $3, 'file', '')`,
			group, member.OrgID, member.ID)
		w.refused("a sender tombstoning without the gate", sender,
			`UPDATE messages SET deleted_at = now(), body = '' WHERE id = $1`, fm.Message.ID)
		if v := w.value(`SELECT count(*) FROM messages WHERE kind = 'file' AND deleted_at IS NULL`); v != "1" {
			t.Errorf("%s live file messages, want 1", v)
		}
	})

	t.Run("uploading where one may not", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		forge := `INSERT INTO uploads (id, conversation_id, org_id, uploader_id, client_msg_id) VALUES ($1, $2, $3, $4, $5)`
		w.refused("an upload to a conversation one is not in", outsider, forge,
			uuid.NewString(), group, outsider.OrgID, outsider.ID, uuid.NewString())
		w.refused("another organization's upload", other, forge,
			uuid.NewString(), group, other.OrgID, other.ID, uuid.NewString())
		w.refused("an upload in someone else's name", member, forge,
			uuid.NewString(), group, sender.OrgID, sender.ID, uuid.NewString())
		file := `INSERT INTO files (id, upload_id, position, conversation_id, org_id, owner_id, storage_key, name, content_type, size, sha256)
			 VALUES ($1, $2, 3, $3, $4, $5, $6, 'x.pdf', 'application/pdf', 1, $7)`
		w.refused("a file added to one's upload after it was recorded", member, file,
			uuid.NewString(), pendingUpload, group, member.OrgID, member.ID, storage.NewKey(), strings.Repeat("c", 64))
		w.refused("a file added to someone else's upload", member, file,
			uuid.NewString(), sentUpload, group, member.OrgID, member.ID, storage.NewKey(), strings.Repeat("c", 64))
		err := w.tryTx(member, func(tx *sql.Tx) error {
			id := uuid.NewString()
			if _, err := tx.Exec(forge, id, group, member.OrgID, member.ID, uuid.NewString()); err != nil {
				return err
			}
			_, err := tx.Exec(`SELECT * FROM app_store_file_message($1)`, id)
			return err
		})
		refusedWith(t, "an upload without files made a message", err, "42501")
		err = w.tryTx(member, func(tx *sql.Tx) error {
			id := uuid.NewString()
			if _, err := tx.Exec(forge, id, group, member.OrgID, member.ID, uuid.NewString()); err != nil {
				return err
			}
			_, err := tx.Exec(file, uuid.NewString(), id, group, member.OrgID, member.ID,
				strings.TrimSuffix(storage.NewKey(), "original")+"large.webp", strings.Repeat("c", 64))
			return err
		})
		refusedWith(t, "a file whose key is a thumbnail's", err, "23514")
		if v := w.value(`SELECT count(*) FROM uploads`); v != "2" {
			t.Errorf("%s uploads, want 2", v)
		}
		if v := w.value(`SELECT count(*) FROM files`); v != "2" {
			t.Errorf("%s files, want 2", v)
		}
	})

	t.Run("who reads a file", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		read := `SELECT id FROM files WHERE id = $1`
		if n := w.count(member, read, sent); n != 1 {
			t.Errorf("a member sees %d of the sent file", n)
		}
		if n := w.count(member, read, pending); n != 1 {
			t.Errorf("the owner sees %d of their unscanned file", n)
		}
		if n := w.count(sender, read, pending); n != 0 {
			t.Errorf("another member sees an unscanned file")
		}
		if n := w.count(outsider, read, sent); n != 0 {
			t.Errorf("a user not in the conversation sees the file")
		}
		if n := w.count(other, read, sent); n != 0 {
			t.Errorf("another organization sees the file")
		}
		if n := w.count(member, `SELECT id FROM uploads WHERE id = $1`, sentUpload); n != 0 {
			t.Errorf("a member sees someone else's upload")
		}
		if n := w.count(leaver, read, sent); n != 1 {
			t.Fatalf("a member sees %d of the sent file before leaving", n)
		}
		if err := w.tryTx(leaver, func(tx *sql.Tx) error { _, err := tx.Exec(`SELECT app_leave($1)`, group); return err }); err != nil {
			t.Fatal(err)
		}
		if n := w.count(leaver, read, sent); n != 0 {
			t.Errorf("a member who left still sees the file")
		}
	})
}
