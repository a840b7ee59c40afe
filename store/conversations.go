package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// ConversationCursor is a position in the conversation list, which is ordered by last
// activity, newest first, then by id.
type ConversationCursor struct {
	At time.Time
	ID int64
}

// sqlMyConversationIDs is the ids of the conversations user $1 is an active member of, as
// an array: the unread counts (and app_list_page, alike) name them with it, so that the planner reads
// those conversations by their key. Joined only through the members, it scanned every
// conversation of the organization (it cannot tell how few rows the policies leave): at
// 20,000 conversations half the statement's time, and growing with the organization.
const sqlMyConversationIDs = `ARRAY(SELECT conversation_id FROM conversation_participants WHERE user_id = $1 AND left_at IS NULL)`

// sqlConversations is a page of the list: the transaction user's conversations before the
// cursor ($1, $2), $3 of them, each with the user's unread count and mute, its last
// message (a NULL id: none) with its read count. Read through app_list_page
// (sql/025_list_reads.sql), a gate that reads the user's own memberships and what they
// reach past the per-row policies: as the application's role the same reads passed the
// policies of five tables (the visibility function once for each, its filter on the 500
// conversations sorted and the 3,525 watermarks counted for a teacher's first page), 3.4
// ms against 1.4.
const sqlConversations = `SELECT id, kind, title, last_seq, last_message_at, updated_at, member_count, unread, muted,
	        message_id, message_kind, body, client_msg_id, created_at, sender_id, sender_user_id, sender_sub,
	        sender_name, sender_role, event, deleted, readers
	   FROM app_list_page($1, $2, $3)`

// Conversations answers a page of the transaction user's conversations, most recent
// activity first, after the cursor (nil: from the top), with participants, last message
// and unread count.
func (tx *Tx) Conversations(ctx context.Context, after *ConversationCursor, limit int) ([]messenger.Conversation, error) {
	cursorAt, cursorID := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), int64(math.MaxInt64)
	if after != nil {
		cursorAt, cursorID = after.At, after.ID
	}
	rows, err := tx.query(ctx, sqlConversations, cursorAt, cursorID, limit)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	defer rows.Close()
	var convs []messenger.Conversation
	var lasts []messenger.Message
	for rows.Next() {
		var c messenger.Conversation
		var lastAt time.Time
		var m messenger.Message
		var msgID sql.NullInt64
		var clientID sql.NullString
		var event []byte
		var sender int64
		if err := rows.Scan(&c.ID, &c.Kind, &c.Title, &c.LastSeq, &lastAt, &c.UpdatedAt, &c.MemberCount, &c.UnreadCount, &c.Muted,
			&msgID, &m.Kind, &m.Body, &clientID, &m.CreatedAt, &sender, &m.Sender.ID, &m.Sender.Sub, &m.Sender.Name, &m.Sender.Role,
			&event, &m.Deleted, &m.ReadCount); err != nil {
			return nil, err
		}
		c.LastMessageAt = &lastAt
		convs = append(convs, c)
		if !msgID.Valid {
			continue
		}
		m.ID, m.ConversationID, m.Seq = msgID.Int64, c.ID, c.LastSeq
		if event != nil {
			m.Event = new(messenger.SystemEvent)
			if err := json.Unmarshal(event, m.Event); err != nil {
				return nil, fmt.Errorf("message %d event: %w", m.ID, err)
			}
		}
		if clientID.Valid {
			s := clientID.String
			m.ClientMsgID = &s
		}
		lasts = append(lasts, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if err := tx.fillMembers(ctx, convs, ListMembers); err != nil {
		return nil, err
	}
	// A preview, not a row of a thread: no runs.
	if err := tx.fillFiles(ctx, lasts); err != nil {
		return nil, fmt.Errorf("load last messages: %w", err)
	}
	byID := make(map[int64]*messenger.Conversation, len(convs))
	for i := range convs {
		byID[convs[i].ID] = &convs[i]
	}
	for i := range lasts {
		byID[lasts[i].ConversationID].LastMessage = &lasts[i]
	}
	return convs, nil
}

// Conversation answers the conversation with this id as the transaction's user sees it; a
// conversation they are not in is not found.
func (tx *Tx) Conversation(ctx context.Context, id int64) (messenger.Conversation, error) {
	var c messenger.Conversation
	var lastAt time.Time
	err := tx.tx.QueryRowContext(ctx,
		`SELECT c.id, c.kind, c.title, c.last_seq, c.last_message_at, c.updated_at, c.member_count,
		        c.last_seq - coalesce(r.last_read_seq, 0), coalesce(p.muted_until > now(), false)
		   FROM conversation_participants p
		   JOIN conversations c ON c.id = p.conversation_id
		   LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
		  WHERE p.conversation_id = $1 AND p.user_id = $2 AND p.left_at IS NULL`, id, tx.id.UserID,
	).Scan(&c.ID, &c.Kind, &c.Title, &c.LastSeq, &lastAt, &c.UpdatedAt, &c.MemberCount, &c.UnreadCount, &c.Muted)
	if err != nil {
		return c, notFound(err, "error.conversation.not_found")
	}
	c.LastMessageAt = &lastAt
	convs := []messenger.Conversation{c}
	if err := tx.fillConversations(ctx, convs, 0); err != nil {
		return c, err
	}
	return convs[0], nil
}

// ListMembers is how many members of each group the conversation list carries: the first
// to have joined (the creator first), with the group's MemberCount beside them. A
// conversation's own page and endpoint carry them all; a direct conversation's two are
// always all of them.
const ListMembers = 5

// sqlMembers answers the active members of each conversation of $1 in the order they
// joined, at most $2 of each (NULL: all), with their users: a few index entries a
// conversation (conversation_participants_current) however large the group.
const sqlMembers = `SELECT q.id, m.role, ` + userColumns + `
	   FROM unnest($1::bigint[]) AS q (id)
	   CROSS JOIN LATERAL (SELECT p.user_id, p.role, p.joined_at FROM conversation_participants p
	                        WHERE p.conversation_id = q.id AND p.left_at IS NULL
	                        ORDER BY p.joined_at, p.user_id LIMIT $2) m
	   JOIN users u ON u.id = m.user_id
	  ORDER BY q.id, m.joined_at, m.user_id`

// sqlListMembers is sqlMembers for the list: the first $2 members of each conversation
// of $1, read through the gate app_list_members (sql/025_list_reads.sql), past the
// per-row policies of the memberships and users; it answers only the conversations the
// transaction's user is an active member of, as the list's are.
const sqlListMembers = `SELECT conversation_id, role, user_id, sub, org_id, zone_id, name, email, user_role, locale, last_seen_at
	   FROM app_list_members($1, $2)`

// sqlPreviews answers the last message of each conversation of $1 whose last seq is the
// same position of $2, named by key (neither the conversations nor any other of their
// messages are read), with its read count: the members other than its sender whose
// watermark reached it, counted here for the one message of each (fillReadCounts would
// send every such watermark: 3,525 for a teacher's first page, to count 51 messages).
const sqlPreviews = `SELECT ` + messageColumns + `,
	        (SELECT count(*) FROM read_receipts r
	          WHERE r.conversation_id = m.conversation_id AND r.last_read_seq >= m.seq
	            AND r.user_id <> coalesce(m.sender_id, 0))
	   FROM messages m LEFT JOIN users u ON u.id = m.sender_id
	  WHERE (m.conversation_id, m.seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`

// fillConversations loads the members (at most membersEach of each, 0: all) and last
// messages of convs.
func (tx *Tx) fillConversations(ctx context.Context, convs []messenger.Conversation, membersEach int) error {
	if err := tx.fillMembers(ctx, convs, membersEach); err != nil {
		return err
	}
	byID := make(map[int64]*messenger.Conversation, len(convs))
	var withLast, lastSeqs pq.Int64Array
	for i := range convs {
		c := &convs[i]
		byID[c.ID] = c
		if c.LastSeq > 0 {
			withLast, lastSeqs = append(withLast, c.ID), append(lastSeqs, c.LastSeq)
		}
	}
	if len(withLast) == 0 {
		return nil
	}
	// A preview, not a row of a thread: no runs.
	msgs, _, err := tx.scanRows(tx.query(ctx, sqlPreviews, withLast, lastSeqs))
	if err == nil {
		err = tx.fillFiles(ctx, msgs)
	}
	if err != nil {
		return fmt.Errorf("load last messages: %w", err)
	}
	for i := range msgs {
		byID[msgs[i].ConversationID].LastMessage = &msgs[i]
	}
	return nil
}

// fillMembers loads the members of convs, at most membersEach of each (0: all). The
// members of a zone's announcements are the whole zone: they are not listed.
func (tx *Tx) fillMembers(ctx context.Context, convs []messenger.Conversation, membersEach int) error {
	byID := make(map[int64]*messenger.Conversation, len(convs))
	var listed pq.Int64Array
	for i := range convs {
		c := &convs[i]
		byID[c.ID] = c
		if c.Kind != messenger.KindAnnouncement {
			listed = append(listed, c.ID)
		}
	}
	if len(listed) == 0 {
		return nil
	}
	var rows *sql.Rows
	var err error
	if membersEach > 0 {
		rows, err = tx.query(ctx, sqlListMembers, listed, membersEach)
	} else {
		rows, err = tx.query(ctx, sqlMembers, listed, nil)
	}
	if err != nil {
		return fmt.Errorf("load participants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var convID int64
		var role string
		var u messenger.User
		var lastSeen sql.NullTime
		if err := rows.Scan(&convID, &role, &u.ID, &u.Sub, &u.OrgID, &u.ZoneID, &u.Name, &u.Email, &u.Role, &u.Locale, &lastSeen); err != nil {
			return err
		}
		if lastSeen.Valid {
			t := lastSeen.Time
			u.LastSeenAt = &t
		}
		c := byID[convID]
		c.Participants = append(c.Participants, messenger.Participant{User: u, ConvRole: role})
	}
	return rows.Err()
}

// CreateGroup creates a group conversation titled title with the transaction's user as its
// admin and memberIDs as members, and answers its id.
func (tx *Tx) CreateGroup(ctx context.Context, title string, memberIDs []int64) (int64, error) {
	id, err := tx.insertConversation(ctx, messenger.KindGroup, title, 0, 0)
	if err != nil {
		return 0, err
	}
	return id, tx.startConversation(ctx, id, memberIDs)
}

// DirectConversation answers the direct conversation between the transaction's user and
// other, creating it if there is none, and making both active members again if one of them
// had left it; created says whether it is new.
func (tx *Tx) DirectConversation(ctx context.Context, other int64) (id int64, created bool, err error) {
	me := tx.id.UserID
	if other == me {
		return 0, false, messenger.Errorf(messenger.EINVALID, "error.pick_other")
	}
	var found sql.NullInt64
	if err := tx.tx.QueryRowContext(ctx, `SELECT app_reopen_direct($1)`, other).Scan(&found); err != nil {
		if wallRefused(err) { // one of the pair moved to another organization
			return 0, false, messenger.Errorf(messenger.EFORBIDDEN, "error.cannot_start")
		}
		return 0, false, fmt.Errorf("find direct conversation: %w", err)
	}
	if found.Valid {
		return found.Int64, false, nil
	}
	if id, err = tx.insertConversation(ctx, messenger.KindDirect, "", min(me, other), max(me, other)); err != nil {
		return 0, false, err
	}
	if err := tx.startConversation(ctx, id, []int64{other}); err != nil {
		return 0, false, err
	}
	return id, true, nil
}

// insertConversation lets the sequence number the conversation (the application's role
// may not name an id) and reads the number back with currval: row-level security hides a
// conversation from its creator until they are a participant, so INSERT ... RETURNING
// would be refused.
func (tx *Tx) insertConversation(ctx context.Context, kind, title string, lo, hi int64) (int64, error) {
	var loArg, hiArg any
	if kind == messenger.KindDirect {
		loArg, hiArg = lo, hi
	}
	_, err := tx.tx.ExecContext(ctx,
		`INSERT INTO conversations (org_id, zone_id, kind, title, direct_user_lo, direct_user_hi, created_by)
		 VALUES ($1, NULL, $2, $3, $4, $5, $6)`,
		tx.id.OrgID, kind, title, loArg, hiArg, tx.id.UserID)
	if err != nil {
		if titleRefused(err) {
			return 0, messenger.Errorf(messenger.EINVALID, "error.title.control")
		}
		return 0, fmt.Errorf("create conversation: %w", err)
	}
	var id int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT currval(pg_get_serial_sequence('conversations', 'id'))`).Scan(&id); err != nil {
		return 0, fmt.Errorf("create conversation: %w", err)
	}
	return id, nil
}

// titleRefused reports whether the database refused a title for the characters in it
// (conversations_title_plain: controls, line separators, text-direction controls).
func titleRefused(err error) bool {
	var pqErr *pq.Error
	return asPQ(err, &pqErr) && pqErr.Code == "23514" && pqErr.Constraint == "conversations_title_plain"
}

// startConversation makes the transaction's user and memberIDs the members of the
// conversation they just created, through the gate: the application's role cannot add
// members by itself.
func (tx *Tx) startConversation(ctx context.Context, convID int64, memberIDs []int64) error {
	_, err := tx.tx.ExecContext(ctx, `SELECT app_start_conversation($1, $2)`, convID, pq.Array(memberIDs))
	if err != nil {
		var pqErr *pq.Error
		if asPQ(err, &pqErr) && pqErr.Code == "23503" { // a user is not of this organization
			return messenger.Errorf(messenger.ENOTFOUND, "error.user.not_found")
		}
		if wallRefused(err) { // the caller moved to another organization meanwhile
			return messenger.Errorf(messenger.EFORBIDDEN, "error.cannot_start")
		}
		return fmt.Errorf("add participants: %w", err)
	}
	return nil
}

// ConversationByTitle answers the id of a group of the transaction's user with this title.
func (tx *Tx) ConversationByTitle(ctx context.Context, title string) (int64, error) {
	var id int64
	err := tx.tx.QueryRowContext(ctx,
		`SELECT c.id FROM conversations c
		   JOIN conversation_participants p ON p.conversation_id = c.id AND p.user_id = $1 AND p.left_at IS NULL
		  WHERE c.kind = 'group' AND c.title = $2
		  ORDER BY c.id LIMIT 1`, tx.id.UserID, title).Scan(&id)
	return id, notFound(err, "error.conversation.not_found")
}

// sqlUnreadCounts is the unread messages of each conversation of user $1 that has any: the
// conversations named by key, and the user's watermark in each (no membership row: the
// ids are the memberships).
const sqlUnreadCounts = `SELECT c.id, c.last_seq - coalesce(r.last_read_seq, 0)
	   FROM conversations c
	   LEFT JOIN read_receipts r ON r.conversation_id = c.id AND r.user_id = $1
	  WHERE c.id = ANY (` + sqlMyConversationIDs + `)
	    AND c.last_seq > coalesce(r.last_read_seq, 0)`

// UnreadCounts answers the number of unread messages of each conversation of the
// transaction's user that has any.
func (tx *Tx) UnreadCounts(ctx context.Context) (map[int64]int64, error) {
	rows, err := tx.query(ctx, sqlUnreadCounts, tx.id.UserID)
	if err != nil {
		return nil, fmt.Errorf("unread counts: %w", err)
	}
	defer rows.Close()
	counts := make(map[int64]int64)
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		counts[id] = n
	}
	return counts, rows.Err()
}

// ParticipantIDs answers the user ids of the active members of a conversation: who hears
// of what happens in it. Of an announcement conversation only the transaction's user: the
// zone hears through its own channel.
func (tx *Tx) ParticipantIDs(ctx context.Context, convID int64) ([]int64, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT p.user_id FROM conversation_participants p
		   JOIN conversations c ON c.id = p.conversation_id
		  WHERE p.conversation_id = $1 AND p.left_at IS NULL
		    AND (c.kind <> 'announcement' OR p.user_id = $2)
		  ORDER BY p.user_id`, convID, tx.id.UserID)
	if err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	return scanIDs(rows)
}

// scanIDs reads a one-column result of ids and closes it.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Leave ends the transaction user's membership of a conversation.
func (tx *Tx) Leave(ctx context.Context, convID int64) error {
	return tx.gate(ctx, "leave", "error.conversation.not_found", `SELECT app_leave($1)`, convID)
}

// AnnouncementZone answers the zone of conversation convID when it is a zone's
// announcements, whose events go to the zone's channel rather than to each member; 0 for
// any other conversation (or one the transaction's user cannot see).
func (tx *Tx) AnnouncementZone(ctx context.Context, convID int64) (int64, error) {
	var zone sql.NullInt64
	err := tx.tx.QueryRowContext(ctx,
		`SELECT zone_id FROM conversations WHERE id = $1 AND kind = 'announcement'`, convID).Scan(&zone)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("announcement zone: %w", err)
	}
	return zone.Int64, nil
}

// ZoneAnnouncement answers the announcement conversation of the transaction user's zone
// and its newest seq; not found when they have no zone or it has none yet.
func (tx *Tx) ZoneAnnouncement(ctx context.Context) (id, lastSeq int64, err error) {
	err = tx.tx.QueryRowContext(ctx,
		`SELECT id, last_seq FROM conversations WHERE kind = 'announcement' AND zone_id = $1`,
		tx.id.ZoneID).Scan(&id, &lastSeq)
	return id, lastSeq, notFound(err, "error.conversation.not_found")
}
