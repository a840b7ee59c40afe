package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dreamseed/messenger"
)

// Contacts answers the users who share an active conversation with the transaction's
// user: the only ones told when they come and go. A zone's announcements do not count:
// sharing a school is not knowing each other.
func (tx *Tx) Contacts(ctx context.Context) ([]int64, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT DISTINCT other.user_id
		   FROM conversation_participants mine
		   JOIN conversation_participants other
		     ON other.conversation_id = mine.conversation_id AND other.left_at IS NULL AND other.user_id <> mine.user_id
		  WHERE mine.user_id = $1 AND mine.left_at IS NULL
		    AND mine.conversation_id NOT IN (SELECT id FROM conversations WHERE kind = 'announcement')`, tx.id.UserID)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	return scanIDs(rows)
}

// PresenceLapsed records that a user whose connections lapsed was last seen at t, and
// answers who they are, for announcing it.
func (db *DB) PresenceLapsed(ctx context.Context, userID int64, t time.Time) (messenger.Identity, string, error) {
	id := messenger.Identity{UserID: userID}
	var sub string
	err := db.db.QueryRowContext(ctx, `SELECT org_id, zone_id, sub FROM app_presence_lapsed($1, $2)`, userID, t).
		Scan(&id.OrgID, &id.ZoneID, &sub)
	if errors.Is(err, sql.ErrNoRows) {
		return id, "", messenger.Errorf(messenger.ENOTFOUND, "error.user.not_found")
	}
	return id, sub, err
}
