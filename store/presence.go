package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
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

// MaxPresenceBatch is the most users one PresenceOffline call takes (the gate's own limit).
const MaxPresenceBatch = 10000

// Offline is a user whose last_seen_at PresenceOffline stored: their portal id, the time
// stored and their contacts, the users to tell.
type Offline struct {
	UserID     int64
	Sub        string
	LastSeenAt time.Time // as stored
	Contacts   []int64
}

// PresenceOffline records, in one statement, that each of userIDs (at most
// MaxPresenceBatch, the users the realtime engine reports offline) was last seen at t,
// never later than now nor earlier than what is stored, and answers each one found with
// their contacts (as Contacts would answer them). It acts as nobody: the presence batcher
// and the sweeper of lapsed presence only, never inside a user's transaction.
func (db *DB) PresenceOffline(ctx context.Context, userIDs []int64, t time.Time) ([]Offline, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT user_id, sub, last_seen_at, contacts FROM app_presence_offline($1, $2)`, pq.Array(userIDs), t)
	if err != nil {
		return nil, fmt.Errorf("presence offline: %w", err)
	}
	defer rows.Close()
	out := make([]Offline, 0, len(userIDs))
	for rows.Next() {
		var o Offline
		if err := rows.Scan(&o.UserID, &o.Sub, &o.LastSeenAt, (*pq.Int64Array)(&o.Contacts)); err != nil {
			return nil, fmt.Errorf("presence offline: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("presence offline: %w", err)
	}
	return out, nil
}
