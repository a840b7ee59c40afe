package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/lib/pq"
	"time"

	"github.com/dreamseed/messenger"
)

// SignInParams is what a verified portal token says about a user.
type SignInParams struct {
	Issuer, Sub, OrgID, ZoneID, Name, Email, Role, Locale string
	// IssuedAt is the token's iat (zero: none). Only a token with iat, issued after the
	// newest token that signed the user in, moves them to another organization.
	IssuedAt time.Time
}

// SignIn creates or updates the user (and their organization and zone) described by a
// verified portal token, and answers the stored user. A user whose token names another
// organization moves (see SignInWithMove).
func (db *DB) SignIn(ctx context.Context, p SignInParams) (messenger.User, error) {
	u, _, err := db.SignInWithMove(ctx, p)
	return u, err
}

// Move is what a user's move to another organization left in the old one: they left
// each of their conversations there, which stay with their members.
type Move struct {
	From          messenger.User // the retired user of the old organization (ids, name, role)
	Conversations []MovedOut
}

// MovedOut is one conversation a moving user left: the notices stored in it (their
// "left", and the admin role passed on) and the members who stay, who are to hear them.
type MovedOut struct {
	ConversationID int64
	Members        []int64
	Notices        []messenger.Message
}

// SignInWithMove is SignIn answering also the move it made, if the token names another
// organization than the user's (nil otherwise). Moving retires the user row of the old
// organization, which keeps its conversations; the user starts afresh in the new one.
func (db *DB) SignInWithMove(ctx context.Context, p SignInParams) (messenger.User, *Move, error) {
	var u messenger.User
	var move *Move
	err := db.InTx(ctx, messenger.Identity{}, func(tx *Tx) error {
		var id messenger.Identity
		var zone sql.NullInt64
		var moved []byte
		var issued sql.NullTime
		if !p.IssuedAt.IsZero() {
			issued = sql.NullTime{Time: p.IssuedAt, Valid: true}
		}
		if err := tx.tx.QueryRowContext(ctx,
			`SELECT user_id, org_id, zone_id, moved FROM app_sign_in($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			p.Issuer, p.Sub, p.OrgID, p.ZoneID, p.Name, p.Email, p.Role, p.Locale, issued,
		).Scan(&id.UserID, &id.OrgID, &zone, &moved); err != nil {
			var pqErr *pq.Error
			if asPQ(err, &pqErr) && pqErr.Code == "28000" {
				if pqErr.Hint == "no iat" {
					return messenger.Errorf(messenger.EUNAUTHORIZED, "error.token.no_iat")
				}
				return messenger.Errorf(messenger.EUNAUTHORIZED, "error.token.before_move")
			}
			return fmt.Errorf("sign in: %w", err)
		}
		id.ZoneID = zone.Int64
		move = nil
		if moved != nil {
			var err error
			if move, err = decodeMove(moved, p.Sub); err != nil {
				return err
			}
		}
		if err := tx.actAs(ctx, id); err != nil {
			return err
		}
		var err error
		u, err = tx.User(ctx, id.UserID)
		return err
	})
	return u, move, err
}

// decodeMove reads what app_move_out answers.
func decodeMove(raw []byte, sub string) (*Move, error) {
	var m struct {
		UserID        int64  `json:"user_id"`
		Name          string `json:"name"`
		Role          string `json:"role"`
		Conversations []struct {
			ConversationID int64   `json:"conversation_id"`
			Members        []int64 `json:"members"`
			Notices        []struct {
				ID        int64                 `json:"id"`
				Seq       int64                 `json:"seq"`
				CreatedAt time.Time             `json:"created_at"`
				Body      string                `json:"body"`
				Event     messenger.SystemEvent `json:"event"`
			} `json:"notices"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("sign in: the move: %w", err)
	}
	move := &Move{From: messenger.User{ID: m.UserID, Sub: sub, Name: m.Name, Role: m.Role}}
	for _, c := range m.Conversations {
		out := MovedOut{ConversationID: c.ConversationID, Members: c.Members}
		for _, n := range c.Notices {
			ev := n.Event
			out.Notices = append(out.Notices, messenger.Message{
				ID: n.ID, ConversationID: c.ConversationID, Seq: n.Seq, Sender: move.From,
				Kind: messenger.MessageSystem, Body: n.Body, CreatedAt: n.CreatedAt, Event: &ev,
			})
		}
		move.Conversations = append(move.Conversations, out)
	}
	return move, nil
}

// actAs switches the transaction's row-level security settings to id, for the sign-in
// path that learns who the user is inside the transaction.
func (tx *Tx) actAs(ctx context.Context, id messenger.Identity) error {
	tx.id = id
	_, err := tx.tx.ExecContext(ctx,
		`SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true),
		        set_config('app.zone_id', $3, true)`,
		strconv.FormatInt(id.UserID, 10), strconv.FormatInt(id.OrgID, 10), zoneSetting(id.ZoneID))
	return err
}

const userColumns = `u.id, u.sub, u.org_id, coalesce(u.zone_id, 0), u.name, u.email, u.role, u.locale, u.last_seen_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanUser(row rowScanner, extra ...any) (messenger.User, error) {
	var u messenger.User
	var lastSeen sql.NullTime
	dest := append([]any{&u.ID, &u.Sub, &u.OrgID, &u.ZoneID, &u.Name, &u.Email, &u.Role, &u.Locale, &lastSeen}, extra...)
	if err := row.Scan(dest...); err != nil {
		return u, err
	}
	if lastSeen.Valid {
		t := lastSeen.Time
		u.LastSeenAt = &t
	}
	return u, nil
}

// User answers the user with this id, if the transaction's organization holds it.
func (tx *Tx) User(ctx context.Context, id int64) (messenger.User, error) {
	u, err := scanUser(tx.tx.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
	return u, notFound(err, "error.user.not_found")
}

// UserBySub answers the user the portal calls sub, if the transaction's organization holds it.
func (tx *Tx) UserBySub(ctx context.Context, sub string) (messenger.User, error) {
	u, err := scanUser(tx.tx.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.sub = $1 AND u.org_id = $2 AND u.moved_at IS NULL`, sub, tx.id.OrgID))
	return u, notFound(err, "error.user.not_found")
}

// SearchUsers answers up to limit people of the transaction's organization whose name
// contains q (all of them, by name, when q is empty), other than the user themself.
func (tx *Tx) SearchUsers(ctx context.Context, q string, limit int) ([]messenger.User, error) {
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.TrimSpace(q)) + "%"
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT `+userColumns+` FROM users u
		  WHERE u.org_id = $1 AND u.id <> $2 AND u.name ILIKE $3 AND u.moved_at IS NULL
		  ORDER BY u.name, u.id LIMIT $4`, tx.id.OrgID, tx.id.UserID, pattern, limit)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	defer rows.Close()
	var users []messenger.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// UsersBySubs answers the users of the transaction's organization the portal calls subs,
// in that order; a sub that names nobody there is a not-found error that names it.
func (tx *Tx) UsersBySubs(ctx context.Context, subs []string) ([]messenger.User, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.org_id = $1 AND u.sub = ANY($2) AND u.moved_at IS NULL`, tx.id.OrgID, pq.Array(subs))
	if err != nil {
		return nil, fmt.Errorf("users by sub: %w", err)
	}
	defer rows.Close()
	bySub := make(map[string]messenger.User, len(subs))
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		bySub[u.Sub] = u
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	users := make([]messenger.User, 0, len(subs))
	for _, sub := range subs {
		u, ok := bySub[sub]
		if !ok {
			if len(sub) > 40 { // a message never repeats a long input
				return nil, messenger.Errorf(messenger.ENOTFOUND, "error.user.other_org")
			}
			return nil, messenger.Errorf(messenger.ENOTFOUND, "error.user.not_in_org", sub)
		}
		users = append(users, u)
	}
	return users, nil
}
