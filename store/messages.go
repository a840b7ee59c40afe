package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

const messageColumns = `m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at,
	coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event,
	m.deleted_at IS NOT NULL`

// queryMessages runs a message query whose FROM is "messages m LEFT JOIN users u" and
// whose remaining clauses are where; file messages get their files (one more query).
// Each message's JoinsPrevious is messenger.JoinsRun of it and the message before it
// (seqs have no gaps): from the answer itself where that message is in it, else from one
// more query for the missing ones (joinRuns), so that even the first of a page or
// fragment knows its run.
func (tx *Tx) queryMessages(ctx context.Context, where string, args ...any) ([]messenger.Message, error) {
	msgs, senders, err := tx.scanMessages(ctx, where, args...)
	if err != nil {
		return nil, err
	}
	return tx.completeMessages(ctx, msgs, senders)
}

// completeMessages gives scanned messages their runs, read counts and files.
func (tx *Tx) completeMessages(ctx context.Context, msgs []messenger.Message, senders []int64) ([]messenger.Message, error) {
	if err := tx.joinRuns(ctx, msgs); err != nil {
		return nil, err
	}
	if err := tx.fillReadCounts(ctx, msgs, senders); err != nil {
		return nil, err
	}
	return msgs, tx.fillFiles(ctx, msgs)
}

// scanMessages answers the messages of a query, without their read counts
// (fillReadCounts), runs or files, and each one's sender_id (0: none), which Sender may
// not show (a sender the reader may not see).
func (tx *Tx) scanMessages(ctx context.Context, where string, args ...any) ([]messenger.Message, []int64, error) {
	return tx.scanMessagesIn(ctx, hot, where, args...)
}

// The tables a conversation's messages are in (sql/024_archive.sql): seq 1 to the
// conversation's archived_through_seq in the archive, the rest hot, the last one always
// hot. Seqs have no gaps, so the hot messages are a suffix of the conversation: a read
// that finds the seqs it wants in messages is done, and one whose range reaches below the
// lowest hot seq reads the archive for the seqs below it, without knowing the boundary.
const (
	hot  = "messages"
	cold = "messages_archive"
)

// scanMessagesIn is scanMessages on table (hot or cold).
func (tx *Tx) scanMessagesIn(ctx context.Context, table, where string, args ...any) ([]messenger.Message, []int64, error) {
	return tx.scanRows(tx.tx.QueryContext(ctx,
		`SELECT `+messageColumns+` FROM `+table+` m LEFT JOIN users u ON u.id = m.sender_id `+where, args...))
}

// scanRows reads the messages of a query of messageColumns, as scanMessages does, and
// their read counts if the query has them as a last column.
func (tx *Tx) scanRows(rows *sql.Rows, err error) ([]messenger.Message, []int64, error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var msgs []messenger.Message
	var senders []int64
	for rows.Next() {
		var m messenger.Message
		var clientID sql.NullString
		var event []byte
		var sender int64
		dest := []any{&m.ID, &m.ConversationID, &m.Seq, &m.Kind, &m.Body, &clientID, &m.CreatedAt,
			&sender, &m.Sender.ID, &m.Sender.Sub, &m.Sender.Name, &m.Sender.Role, &event, &m.Deleted}
		if len(cols) > len(dest) { // the read count, counted by the query
			dest = append(dest, &m.ReadCount)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		if event != nil {
			m.Event = new(messenger.SystemEvent)
			if err := json.Unmarshal(event, m.Event); err != nil {
				return nil, nil, fmt.Errorf("message %d event: %w", m.ID, err)
			}
		}
		if clientID.Valid {
			s := clientID.String
			m.ClientMsgID = &s
		}
		msgs, senders = append(msgs, m), append(senders, sender)
	}
	return msgs, senders, rows.Err()
}

// sqlReadMarks answers the read watermarks of each conversation of $1 at or past the
// lowest seq of its messages being read ($2, the same position): all a page's read counts
// need, in one index range scan a conversation.
const sqlReadMarks = `SELECT r.conversation_id, r.user_id, r.last_read_seq
	   FROM unnest($1::bigint[], $2::bigint[]) AS q (conversation_id, lowest)
	   JOIN read_receipts r ON r.conversation_id = q.conversation_id AND r.last_read_seq >= q.lowest`

// fillReadCounts sets each message's ReadCount: how many members other than its sender have
// read up to it or past it. The marks come in one query and are counted here: a count a
// message in SQL read a large group's watermarks once for every message of the page.
func (tx *Tx) fillReadCounts(ctx context.Context, msgs []messenger.Message, senders []int64) error {
	if len(msgs) == 0 {
		return nil
	}
	lowest := map[int64]int64{}
	for _, m := range msgs {
		if lo, ok := lowest[m.ConversationID]; !ok || m.Seq < lo {
			lowest[m.ConversationID] = m.Seq
		}
	}
	convs, los := make(pq.Int64Array, 0, len(lowest)), make(pq.Int64Array, 0, len(lowest))
	for c, lo := range lowest {
		convs, los = append(convs, c), append(los, lo)
	}
	rows, err := tx.query(ctx, sqlReadMarks, convs, los)
	if err != nil {
		return fmt.Errorf("read marks: %w", err)
	}
	defer rows.Close()
	marks := map[int64][]readMark{} // by conversation
	for rows.Next() {
		var conv int64
		var r readMark
		if err := rows.Scan(&conv, &r.user, &r.seq); err != nil {
			return fmt.Errorf("read marks: %w", err)
		}
		marks[conv] = append(marks[conv], r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read marks: %w", err)
	}
	countReads(msgs, senders, marks)
	return nil
}

// readMark is a member's read watermark.
type readMark struct{ user, seq int64 }

// countReads sets each message's ReadCount from the watermarks of its conversation at or
// past it (marks, by conversation): how many members other than its sender (senders[i],
// msgs[i]'s) have read up to it or past it.
func countReads(msgs []messenger.Message, senders []int64, marks map[int64][]readMark) {
	type mark struct{ conv, user int64 }
	sorted := make(map[int64][]int64, len(marks))
	own := map[mark]int64{}
	for conv, rs := range marks {
		seqs := make([]int64, len(rs))
		for i, r := range rs {
			seqs[i] = r.seq
			own[mark{conv, r.user}] = r.seq
		}
		slices.Sort(seqs)
		sorted[conv] = seqs
	}
	for i := range msgs {
		m := &msgs[i]
		seqs := sorted[m.ConversationID]
		n := int64(len(seqs) - sort.Search(len(seqs), func(j int) bool { return seqs[j] >= m.Seq }))
		if seq, ok := own[mark{m.ConversationID, senders[i]}]; ok && seq >= m.Seq {
			n-- // the sender's own watermark is no reader of theirs
		}
		m.ReadCount = n
	}
}

// joinRuns sets each message's JoinsPrevious. The messages before those whose own is not
// in msgs are read by conversation and seqs given as values: a join on seq - 1 cannot use
// the index under row-level security (the arithmetic is not leakproof, so it may not run
// before the policy), and the planner scanned a conversation's messages for every row. A
// message before that the reader may not see leaves the run to start there.
func (tx *Tx) joinRuns(ctx context.Context, msgs []messenger.Message) error {
	type key struct{ conv, seq int64 }
	byKey := make(map[key]*messenger.Message, len(msgs))
	for i := range msgs {
		byKey[key{msgs[i].ConversationID, msgs[i].Seq}] = &msgs[i]
	}
	missing := map[int64]pq.Int64Array{} // by conversation: the seqs before messages not in msgs
	for _, m := range msgs {
		if k := (key{m.ConversationID, m.Seq - 1}); k.seq > 0 && byKey[k] == nil {
			missing[k.conv] = append(missing[k.conv], k.seq)
		}
	}
	for conv, seqs := range missing { // one conversation, but for a message list of several
		before, err := tx.messagesAt(ctx, conv, seqs)
		if err != nil {
			return err
		}
		for i := range before {
			byKey[key{before[i].ConversationID, before[i].Seq}] = &before[i]
		}
	}
	for i := range msgs {
		if prev := byKey[key{msgs[i].ConversationID, msgs[i].Seq - 1}]; prev != nil {
			msgs[i].JoinsPrevious = messenger.JoinsRun(*prev, msgs[i])
		}
	}
	return nil
}

// MessagesBefore answers up to limit messages of a conversation with seq below beforeSeq
// (0: from the newest), newest first. The caller checks membership first.
func (tx *Tx) MessagesBefore(ctx context.Context, convID, beforeSeq int64, limit int) ([]messenger.Message, error) {
	newest := beforeSeq <= 0
	if newest {
		beforeSeq = 1<<63 - 1
	}
	msgs, senders, err := tx.scanMessages(ctx, sqlBefore, convID, beforeSeq, limit)
	if err == nil && len(msgs) < limit {
		// Short of the limit: the rest, if any, is below the lowest hot seq, in the archive.
		// No hot message at all for the newest page: the conversation has none (its last
		// one is always hot).
		below := beforeSeq
		if len(msgs) > 0 {
			below = msgs[len(msgs)-1].Seq
		}
		if below > 1 && (len(msgs) > 0 || !newest) {
			var older []messenger.Message
			var olderSenders []int64
			older, olderSenders, err = tx.scanMessagesIn(ctx, cold, sqlBefore, convID, below, limit-len(msgs))
			msgs, senders = append(msgs, older...), append(senders, olderSenders...)
		}
	}
	if err == nil {
		msgs, err = tx.completeMessages(ctx, msgs, senders)
	}
	if err != nil {
		return nil, fmt.Errorf("messages before: %w", err)
	}
	return msgs, nil
}

// The page statements, the same on either table.
const (
	sqlBefore = `WHERE m.conversation_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`
	sqlAfter  = `WHERE m.conversation_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3`
)

// MessagesAfter answers up to limit messages of a conversation with seq above afterSeq,
// oldest first: what a client that has seen afterSeq is missing.
func (tx *Tx) MessagesAfter(ctx context.Context, convID, afterSeq int64, limit int) ([]messenger.Message, error) {
	msgs, senders, err := tx.scanMessages(ctx, sqlAfter, convID, afterSeq, limit)
	if err == nil && len(msgs) > 0 && msgs[0].Seq > afterSeq+1 {
		// The seqs between afterSeq and the lowest hot one are in the archive. (No hot
		// message at all: nothing past afterSeq, since the last one is always hot.)
		var older []messenger.Message
		var olderSenders []int64
		older, olderSenders, err = tx.scanMessagesIn(ctx, cold,
			`WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq ASC LIMIT $4`,
			convID, afterSeq, msgs[0].Seq, limit)
		n := min(len(msgs), limit-len(older))
		msgs, senders = append(older, msgs[:n]...), append(olderSenders, senders[:n]...)
	}
	if err == nil {
		msgs, err = tx.completeMessages(ctx, msgs, senders)
	}
	if err != nil {
		return nil, fmt.Errorf("messages after: %w", err)
	}
	return msgs, nil
}

// NewMessage is a message to store.
type NewMessage struct {
	Kind        string
	Body        string
	ClientMsgID *string
	// CanAnnounce says the sender may post in their zone's announcements.
	CanAnnounce bool
}

// Sent is what InsertMessage did.
type Sent struct {
	Message messenger.Message
	Created bool    // false: the client_msg_id was sent before, Message is that message
	Members []int64 // the active members to tell; empty for announcements
	ZoneID  int64   // the zone of an announcement (told through its zone channel), else 0
}

// sqlCheckMessage is the first statement of a send: was this client_msg_id sent already,
// the conversation's kind and zone, the sender's membership, and the members to tell.
// The sender's membership row is share-locked until the commit: a removal or a leave (an
// update of that row, maybe in another process) either waits for this send, whose message
// then comes before its notice, or commits first and this check finds no membership.
const sqlCheckMessage = `SELECT (SELECT id FROM messages WHERE sender_id = $2 AND client_msg_id = $3),
	        c.kind, coalesce(c.zone_id, 0),
	        EXISTS (SELECT 1 FROM conversation_participants
	                 WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL FOR SHARE),
	        CASE WHEN c.kind = 'announcement' THEN '{}'
	             ELSE (SELECT coalesce(array_agg(p.user_id ORDER BY p.user_id), '{}')
	                     FROM conversation_participants p
	                    WHERE p.conversation_id = $1 AND p.left_at IS NULL) END
	   FROM conversations c WHERE c.id = $1`

// sqlInsertMessage is the second: the message, numbered by the database (a trigger checks
// the sender may post there, takes the next seq under the conversation row lock and raises
// the sender's own read watermark to it).
const sqlInsertMessage = `INSERT INTO messages (conversation_id, org_id, sender_id, client_msg_id, kind, body)
	 VALUES ($1, $2, $3, $4, $5, $6)
	 RETURNING id, seq, created_at`

// InsertMessage stores a message of the transaction's user in a conversation they are an
// active member of, under the next seq, and raises their own read watermark to it. The
// answer's message has the transaction's user as sender, of whom only the ids are filled
// in, and whose JoinsPrevious is not worked out (the demo loader is its only caller; the
// server's sends go through InsertMessages). A clientMsgID this user already sent answers
// the stored message with Created false.
//
// It takes two statements: the duplicate and membership check (with the member list),
// then one that bumps last_seq, inserts and raises the watermark. The conversation row lock
// that orders concurrent senders is held only from that statement to the commit.
func (tx *Tx) InsertMessage(ctx context.Context, convID int64, nm NewMessage) (Sent, error) {
	var (
		sent     Sent
		existing sql.NullInt64
		kind     string
		member   bool
	)
	err := tx.queryRow(ctx, sqlCheckMessage,
		convID, tx.id.UserID, nm.ClientMsgID).Scan(&existing, &kind, &sent.ZoneID, &member, (*pq.Int64Array)(&sent.Members))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !member) {
		return Sent{}, messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")
	}
	if err != nil {
		return Sent{}, fmt.Errorf("check message: %w", err)
	}
	if kind != messenger.KindAnnouncement {
		sent.ZoneID = 0
	}
	if existing.Valid {
		msgs, err := tx.queryMessages(ctx, `WHERE m.id = $1`, existing.Int64)
		if err != nil || len(msgs) != 1 {
			return Sent{}, fmt.Errorf("load sent message: %w", err)
		}
		if msgs[0].ConversationID != convID {
			return Sent{}, messenger.Errorf(messenger.ECONFLICT, "error.client_msg_id.other_conversation")
		}
		sent.Message = msgs[0]
		return sent, nil
	}
	if kind == messenger.KindAnnouncement && !nm.CanAnnounce {
		return Sent{}, messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.post")
	}

	m := messenger.Message{ConversationID: convID, Kind: nm.Kind, Body: nm.Body, ClientMsgID: nm.ClientMsgID}
	err = tx.queryRow(ctx, sqlInsertMessage,
		convID, tx.id.OrgID, tx.id.UserID, nm.ClientMsgID, nm.Kind, nm.Body).Scan(&m.ID, &m.Seq, &m.CreatedAt)
	if err != nil {
		var pqErr *pq.Error
		switch {
		case asPQ(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "messages_sender_id_client_msg_id_key":
			// A concurrent request with the same client_msg_id committed first; the retried
			// transaction finds its message.
			return Sent{}, &pq.Error{Code: "40001", Message: "duplicate client_msg_id raced"}
		case wallRefused(err):
			// The database's own wall: the user's portal role changed since it was read.
			return Sent{}, messenger.Errorf(messenger.EFORBIDDEN, "error.cannot_post")
		}
		return Sent{}, fmt.Errorf("insert message: %w", err)
	}
	m.Sender = messenger.User{ID: tx.id.UserID, OrgID: tx.id.OrgID}
	sent.Message, sent.Created = m, true
	return sent, nil
}

// InsertNotice stores a system message of the transaction's user saying ev, through the
// gate (the application's role cannot write system messages itself), which checks that
// the transaction made that change already (call it after the change) and writes the
// body itself, the same Korean text as ev.Korean(). It is numbered like any message and
// raises the user's watermark; the answer's sender has only the ids filled in.
func (tx *Tx) InsertNotice(ctx context.Context, convID int64, ev messenger.SystemEvent) (messenger.Message, error) {
	raw, err := json.Marshal(ev)
	if err != nil {
		return messenger.Message{}, err
	}
	m := messenger.Message{ConversationID: convID, Kind: messenger.MessageSystem, Body: ev.Korean(), Event: &ev,
		Sender: messenger.User{ID: tx.id.UserID, OrgID: tx.id.OrgID}}
	err = tx.tx.QueryRowContext(ctx, `SELECT notice_id, notice_seq, notice_at FROM app_system_notice($1, $2, $3)`,
		convID, m.Body, string(raw)).Scan(&m.ID, &m.Seq, &m.CreatedAt)
	if err != nil {
		return messenger.Message{}, fmt.Errorf("system notice: %w", err)
	}
	return m, nil
}

func (tx *Tx) messageByClientID(ctx context.Context, clientMsgID string) (messenger.Message, error) {
	msgs, err := tx.queryMessages(ctx, `WHERE m.sender_id = $1 AND m.client_msg_id = $2`, tx.id.UserID, clientMsgID)
	return first(msgs, err, "error.message.not_found")
}

func asPQ(err error, target **pq.Error) bool { return errors.As(err, target) }

// wallRefused reports whether the database's own wall (a privilege, a policy or a gate
// function) refused the statement.
func wallRefused(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "42501"
}

// BatchSend is one text message of InsertMessages: who sends it and what.
type BatchSend struct {
	Sender      messenger.Identity
	Body        string
	ClientMsgID *string // canonical UUID text, or nil
	CanAnnounce bool    // the sender may post in their zone's announcements
}

// BatchSent is InsertMessages' answer for one send: what it did, or why it was refused.
type BatchSent struct {
	Sent
	Err error // a domain error of this send alone (not found, forbidden, conflict)
}

// SendGroup is the sends of one batch to one conversation.
type SendGroup struct {
	ConvID int64
	Sends  []BatchSend
	// Last is the conversation's last message as the caller last stored it, if it knows it
	// (sender, kind, time and seq): when it is the one just before the first new message,
	// that message's run is known without a read.
	Last *messenger.Message
}

// sqlSendBatch stores a batch of text messages to several conversations (sql/020_send_gate.sql).
const sqlSendBatch = `SELECT outcome, coalesce(message_id, 0), coalesce(message_seq, 0), message_at, zone_id, members
	   FROM app_send_batch($1, $2, $3, $4, $5, $6)`

// MaxBatch is the most sends InsertMessages stores in one call.
const MaxBatch = 1000

// InsertMessages stores the text messages of several senders to several conversations in
// one statement (a gate, acting as nobody: call it before the transaction names anyone),
// each conversation's numbered in the order given: each send is checked and answered as
// InsertMessage would, as its own sender, and a refused one (not a member, an announcement
// it may not post, a client_msg_id used for another conversation) leaves the others
// stored. A client_msg_id sent before answers the stored message with Created false. Two
// sends of one group must not share a sender and a client_msg_id. It answers each send, by
// group.
//
// An error that no check answers (a client_msg_id another transaction stored meanwhile)
// fails the whole statement and the transaction: the caller then splits the batch, where
// the same error is one send's answer. Each new message's JoinsPrevious is worked out from
// the message before it: the one just stored in the batch, the group's Last, or else one
// read as the first new message's sender. Afterwards the transaction acts as the sender of
// the last message it read, or as no one: ActAs names whoever it writes for next.
func (tx *Tx) InsertMessages(ctx context.Context, groups []SendGroup) ([][]BatchSent, error) {
	n := 0
	for _, g := range groups {
		n += len(g.Sends)
	}
	if n == 0 || n > MaxBatch {
		return nil, fmt.Errorf("send messages: %d sends, want 1 to %d", n, MaxBatch)
	}
	convs, users, orgs := make(pq.Int64Array, 0, n), make(pq.Int64Array, 0, n), make(pq.Int64Array, 0, n)
	clients, bodies, announce := make([]sql.NullString, 0, n), make(pq.StringArray, 0, n), make(pq.BoolArray, 0, n)
	for _, g := range groups {
		for _, b := range g.Sends {
			convs, users, orgs = append(convs, g.ConvID), append(users, b.Sender.UserID), append(orgs, b.Sender.OrgID)
			bodies, announce = append(bodies, b.Body), append(announce, b.CanAnnounce)
			c := sql.NullString{}
			if b.ClientMsgID != nil {
				c = sql.NullString{String: *b.ClientMsgID, Valid: true}
			}
			clients = append(clients, c)
		}
	}
	rows, err := tx.query(ctx, sqlSendBatch, convs, users, orgs, pq.Array(clients), bodies, announce)
	if err != nil {
		return nil, tx.sendError(err, "send messages")
	}
	defer rows.Close()
	flat := make([]BatchSent, 0, n)
	for rows.Next() {
		var (
			outcome string
			b       BatchSent
			at      sql.NullTime
			mem     pq.Int64Array
		)
		if err := rows.Scan(&outcome, &b.Message.ID, &b.Message.Seq, &at, &b.ZoneID, &mem); err != nil {
			return nil, fmt.Errorf("send messages: %w", err)
		}
		if len(flat) >= n {
			return nil, errors.New("send messages: more answers than sends")
		}
		b.Members = mem
		switch outcome {
		case "created":
			b.Created = true
			b.Message.CreatedAt = at.Time
		case "duplicate": // loaded below, as its sender
		case "not_found":
			b.Err = messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")
		case "forbidden":
			b.Err = messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.post")
		case "conflict":
			b.Err = messenger.Errorf(messenger.ECONFLICT, "error.client_msg_id.other_conversation")
		default:
			return nil, fmt.Errorf("send messages: unknown outcome %q", outcome)
		}
		flat = append(flat, b)
	}
	if err := rows.Err(); err != nil {
		return nil, tx.sendError(err, "send messages")
	}
	rows.Close()
	if len(flat) != n {
		return nil, fmt.Errorf("send messages: %d answers for %d sends", len(flat), n)
	}
	out := make([][]BatchSent, len(groups))
	for gi, g := range groups {
		res := flat[:len(g.Sends):len(g.Sends)]
		flat = flat[len(g.Sends):]
		// The message before each new one: the one stored just before it in this batch (its
		// seqs follow the order given), or for the first the group's Last, or a read.
		var prev *messenger.Message
		if g.Last != nil {
			prev = g.Last
		}
		var members []int64
		for _, r := range res {
			if r.Members != nil {
				members = r.Members
			}
		}
		for i := range res {
			s := g.Sends[i]
			if res[i].Created {
				m := &res[i].Message
				m.ConversationID, m.Kind, m.Body, m.ClientMsgID = g.ConvID, messenger.MessageText, s.Body, s.ClientMsgID
				m.Sender = messenger.User{ID: s.Sender.UserID, OrgID: s.Sender.OrgID}
				if prev != nil && prev.Seq != m.Seq-1 {
					prev = nil // not the message before
				}
				if prev == nil && m.Seq > 1 { // read it, as its sender
					if err := tx.ActAs(ctx, s.Sender); err != nil {
						return nil, err
					}
					before, err := tx.messagesAt(ctx, g.ConvID, pq.Int64Array{m.Seq - 1})
					if err != nil {
						return nil, err
					}
					if len(before) == 1 {
						prev = &before[0]
					}
				}
				m.JoinsPrevious = prev != nil && messenger.JoinsRun(*prev, *m)
				prev = m
				res[i].Members = nil
				if res[i].ZoneID == 0 {
					res[i].Members = members
				}
				continue
			}
			res[i].Members = nil
			if res[i].Err != nil {
				continue
			}
			if err := tx.ActAs(ctx, s.Sender); err != nil {
				return nil, err
			}
			msgs, err := tx.queryMessages(ctx, `WHERE m.id = $1`, res[i].Message.ID)
			if err != nil || len(msgs) != 1 {
				return nil, fmt.Errorf("load sent message: %w", err)
			}
			if msgs[0].ConversationID != g.ConvID {
				res[i].Err = messenger.Errorf(messenger.ECONFLICT, "error.client_msg_id.other_conversation")
				continue
			}
			res[i].Message = msgs[0]
		}
		out[gi] = res
	}
	return out, nil
}

// messagesAt answers the messages of conversation convID with the given seqs that the
// transaction's user sees, without runs or files. The seqs go as values: see joinRuns.
func (tx *Tx) messagesAt(ctx context.Context, convID int64, seqs pq.Int64Array) ([]messenger.Message, error) {
	const where = `WHERE m.conversation_id = $1 AND m.seq = ANY($2)`
	msgs, _, err := tx.scanMessages(ctx, where, convID, seqs)
	if err != nil {
		return nil, fmt.Errorf("messages at: %w", err)
	}
	if len(msgs) < len(seqs) {
		// Those below the lowest hot seq found are in the archive, if anywhere.
		lowest := int64(1<<63 - 1)
		for _, m := range msgs {
			lowest = min(lowest, m.Seq)
		}
		var below pq.Int64Array
		for _, s := range seqs {
			if s < lowest {
				below = append(below, s)
			}
		}
		if len(below) > 0 {
			older, _, err := tx.scanMessagesIn(ctx, cold, where, convID, below)
			if err != nil {
				return nil, fmt.Errorf("messages at: %w", err)
			}
			msgs = append(msgs, older...)
		}
	}
	return msgs, nil
}

// sendError maps what the database said to a send: a client_msg_id another transaction
// stored meanwhile is a conflict worth a retry (which then finds the stored message), the
// wall's refusal is the sender's.
func (tx *Tx) sendError(err error, what string) error {
	var pqErr *pq.Error
	switch {
	case asPQ(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "messages_sender_id_client_msg_id_key":
		return &pq.Error{Code: "40001", Message: "duplicate client_msg_id raced"}
	case wallRefused(err):
		// The database's own wall: the user's portal role changed since it was read.
		return messenger.Errorf(messenger.EFORBIDDEN, "error.cannot_post")
	}
	return fmt.Errorf("%s: %w", what, err)
}
