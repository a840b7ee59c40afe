package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// A history page is one statement (prepared, store/prepared.go): the reader's membership,
// the page with one message more (the next page's first, which says whether there is more
// and is the message before the page's oldest, for its run; a catch-up reads the message
// before the page instead, seq = after_seq), and the read watermarks at or past the page's
// lowest seq (fillReadCounts' marks). Three statements and the membership check before,
// each a round trip with its own pass of the policies, were most of a page's cost.
//
// The first row answers membership and the marks (as arrays), the others are the
// messages, in no particular order (sorted in Go).
const sqlPageColumns = `m.id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at,
	        coalesce(m.sender_id, 0), coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, ''), m.event,
	        m.deleted_at IS NOT NULL`

const sqlPageTail = `),
	marks AS (SELECT coalesce(array_agg(r.user_id), '{}') AS users, coalesce(array_agg(r.last_read_seq), '{}') AS seqs
	            FROM read_receipts r
	           WHERE r.conversation_id = $1 AND r.last_read_seq >= (SELECT min(seq) FROM page))
	SELECT true, mem.ok, marks.users, marks.seqs, 0, 0, '', '', NULL, now(), 0, 0, '', '', '', NULL, false
	  FROM mem, marks
	UNION ALL
	SELECT false, true, NULL, NULL, page.* FROM page`

const sqlPageHead = `WITH mem AS (SELECT EXISTS (SELECT 1 FROM conversation_participants p
	                            WHERE p.conversation_id = $1 AND p.user_id = $4 AND p.left_at IS NULL) AS ok),
	page AS (SELECT ` + sqlPageColumns + `
	           FROM messages m LEFT JOIN users u ON u.id = m.sender_id
	          WHERE (SELECT ok FROM mem) AND m.conversation_id = $1 AND `

// sqlPageBefore reads the page before $2 (newest first), $3 messages with the one more.
const sqlPageBefore = sqlPageHead + `m.seq < $2 ORDER BY m.seq DESC LIMIT $3` + sqlPageTail

// sqlPageFrom reads the messages from $2 on (oldest first), $3 of them: a catch-up's
// page with the message before it.
const sqlPageFrom = sqlPageHead + `m.seq >= $2 ORDER BY m.seq ASC LIMIT $3` + sqlPageTail

// MessagePage answers a page of conversation convID's messages with their runs, read
// counts and files, and whether more lie beyond it: up to limit messages after afterSeq
// oldest first when after is set, else before beforeSeq (0: from the newest) newest first.
// A conversation the transaction's user is not an active member of is not found.
func (tx *Tx) MessagePage(ctx context.Context, convID int64, after bool, seq int64, limit int) ([]messenger.Message, bool, error) {
	query, from, want := sqlPageBefore, seq, limit+1
	if !after && seq <= 0 {
		from = 1<<63 - 1
	}
	if after {
		query, from = sqlPageFrom, max(seq, 0)
		if from > 0 {
			want++ // the message before the page, seq = after
		}
	}
	rows, err := tx.query(ctx, query, convID, from, want, tx.id.UserID)
	if err != nil {
		return nil, false, fmt.Errorf("message page: %w", err)
	}
	defer rows.Close()
	var (
		member  bool
		users   pq.Int64Array
		seqs    pq.Int64Array
		msgs    []messenger.Message
		senders = map[int64]int64{} // by seq
	)
	for rows.Next() {
		var (
			head, ok bool
			m        messenger.Message
			clientID sql.NullString
			event    []byte
			sender   int64
			us, ss   pq.Int64Array
		)
		if err := rows.Scan(&head, &ok, &us, &ss, &m.ID, &m.Seq, &m.Kind, &m.Body, &clientID, &m.CreatedAt,
			&sender, &m.Sender.ID, &m.Sender.Sub, &m.Sender.Name, &m.Sender.Role, &event, &m.Deleted); err != nil {
			return nil, false, fmt.Errorf("message page: %w", err)
		}
		if head {
			member, users, seqs = ok, us, ss
			continue
		}
		m.ConversationID = convID
		if event != nil {
			m.Event = new(messenger.SystemEvent)
			if err := json.Unmarshal(event, m.Event); err != nil {
				return nil, false, fmt.Errorf("message %d event: %w", m.ID, err)
			}
		}
		if clientID.Valid {
			s := clientID.String
			m.ClientMsgID = &s
		}
		msgs = append(msgs, m)
		senders[m.Seq] = sender
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("message page: %w", err)
	}
	rows.Close()
	if !member {
		return nil, false, messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")
	}

	// Oldest first, for the runs.
	slices.SortFunc(msgs, func(a, b messenger.Message) int { return int(a.Seq - b.Seq) })
	if pageReachesArchive(after, seq, want, msgs) {
		return tx.pageWithArchive(ctx, convID, after, seq, limit)
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i-1].Seq == msgs[i].Seq-1 {
			msgs[i].JoinsPrevious = messenger.JoinsRun(msgs[i-1], msgs[i])
		}
	}
	var hasMore bool
	if after {
		if len(msgs) > 0 && msgs[0].Seq <= seq {
			msgs = msgs[1:] // the message before the page
		}
		if len(msgs) > limit {
			msgs, hasMore = msgs[:limit], true
		}
	} else {
		if len(msgs) > limit {
			msgs, hasMore = msgs[len(msgs)-limit:], true // the oldest was the next page's
		}
		slices.Reverse(msgs)
	}
	marks := map[int64][]readMark{}
	for i := range users {
		marks[convID] = append(marks[convID], readMark{user: users[i], seq: seqs[i]})
	}
	sent := make([]int64, len(msgs))
	for i, m := range msgs {
		sent[i] = senders[m.Seq]
	}
	countReads(msgs, sent, marks)
	if err := tx.fillFiles(ctx, msgs); err != nil {
		return nil, false, err
	}
	return msgs, hasMore, nil
}

// pageReachesArchive reports whether a page's hot rows (msgs, oldest first; want were
// asked for) leave seqs of the page below the lowest hot one, which are in the archive
// (sql/024_archive.sql): the hot messages are a suffix of the conversation, its last one
// always hot. A page of hot messages only never reads the archive.
func pageReachesArchive(after bool, seq int64, want int, msgs []messenger.Message) bool {
	if after {
		// Nothing hot past the position: nothing past it at all.
		return len(msgs) > 0 && msgs[0].Seq > max(seq, 1)
	}
	if len(msgs) >= want {
		return false
	}
	if len(msgs) == 0 {
		// The newest page of a conversation without messages, or a page before the
		// lowest hot seq.
		return seq > 1
	}
	return msgs[0].Seq > 1
}

// pageWithArchive answers a page that reaches below the hot messages, as MessagePage
// does, from the hot table and the archive (MessagesBefore and MessagesAfter read both;
// the membership was checked by the page's statement).
func (tx *Tx) pageWithArchive(ctx context.Context, convID int64, after bool, seq int64, limit int) ([]messenger.Message, bool, error) {
	var (
		msgs []messenger.Message
		err  error
	)
	if after {
		msgs, err = tx.MessagesAfter(ctx, convID, max(seq, 0), limit+1)
	} else {
		msgs, err = tx.MessagesBefore(ctx, convID, seq, limit+1)
	}
	if err != nil {
		return nil, false, err
	}
	if len(msgs) > limit {
		return msgs[:limit], true, nil
	}
	return msgs, false, nil
}
