package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/lib/pq"
)

// Config is the shape of the history to load.
type Config struct {
	Users         int   // users of the organization, ids 1..Users; user 1 is the heavy user
	Conversations int   // all conversations: BigGroups + Classes + direct ones
	Messages      int64 // messages over all conversations
	BigGroups     int   // groups of BigSize members, the heavy user in each
	BigSize       int
	Classes       int // groups of ClassSize members, each made by a teacher
	ClassSize     int
	HeavyConvs    int // conversations of the heavy user: the big groups, HeavyClasses classes, the rest direct
	HeavyClasses  int
	Zones         int
	Span          time.Duration // the messages' times spread over the Span before now
	Seed          uint64
	Org           string // the organization's portal id
	Log           io.Writer
}

// DefaultConfig is the bench's ten million messages.
func DefaultConfig() Config {
	return Config{
		Users: 50_000, Conversations: 20_000, Messages: 10_000_000,
		BigGroups: 10, BigSize: 500, Classes: 1_490, ClassSize: 30, HeavyConvs: 500, HeavyClasses: 100,
		Zones: 10, Span: 365 * 24 * time.Hour, Seed: 1, Org: "bench-org", Log: io.Discard,
	}
}

func (c Config) directs() int { return c.Conversations - c.BigGroups - c.Classes }

func (c Config) validate() error {
	heavyDirects := c.HeavyConvs - c.BigGroups - c.HeavyClasses
	switch {
	case c.Users < 3 || c.Zones < 1 || c.Messages < 1:
		return errors.New("want at least 3 users, a zone and a message")
	case c.directs() < 0:
		return errors.New("more groups than conversations")
	case c.BigSize > c.Users || c.ClassSize > c.Users || c.BigSize < 2 || c.ClassSize < 2:
		return errors.New("a group larger than the users, or smaller than two")
	case c.HeavyClasses > c.Classes || heavyDirects < 0 || heavyDirects > c.directs() || heavyDirects > c.Users-1:
		return errors.New("the heavy user's conversations do not fit the others")
	case int64(c.directs()-heavyDirects) > int64(c.Users-1)*int64(c.Users-2)/4:
		return errors.New("too many direct conversations for the users")
	}
	return nil
}

// Plan is what a load made, for the measurements: the heavy user and their conversations.
type Plan struct {
	Org         string `json:"org"`
	Zone        string `json:"zone"`
	Issuer      string `json:"issuer"`
	Sub         string `json:"sub"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	UserID      int64  `json:"user_id"`
	OrgID       int64  `json:"org_id"`
	ZoneID      int64  `json:"zone_id"`
	HeavyConvs  int    `json:"heavy_conversations"`
	HeavyUnread int64  `json:"heavy_unread_conversations"`
	// Thread is the heavy user's conversation with the most messages; ThreadLastSeq its last.
	Thread        int64   `json:"thread"`
	ThreadLastSeq int64   `json:"thread_last_seq"`
	ThreadMembers int     `json:"thread_members"`
	Users         int     `json:"users"`
	Conversations int     `json:"conversations"`
	Messages      int64   `json:"messages"`
	Over100k      int     `json:"conversations_over_100k"`
	Receipts      int64   `json:"read_receipts"`
	Seconds       Seconds `json:"seconds"`
}

// Seconds is how long each phase of the load took.
type Seconds struct {
	Copy    float64 `json:"copy"`    // generating and copying every row
	Indexes float64 `json:"indexes"` // the messages' keys and indexes, built after
	Vacuum  float64 `json:"vacuum"`  // VACUUM ANALYZE
	Total   float64 `json:"total"`
}

const issuer = "dreamseed-portal"

var (
	familyNames = []string{"김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권"}
	givenNames  = []string{"민준", "서연", "도윤", "하은", "시우", "지우", "서준", "하윤", "예준", "지민", "주원", "수아", "지호", "채원", "현우"}
	bodies      = []string{
		"안녕하세요, 내일 현장학습 준비물 안내드립니다. 도시락과 물, 우비를 챙겨 주세요.",
		"네, 알겠습니다. 감사합니다!",
		"혹시 출발 시간이 몇 시인가요? 아이가 아침에 병원에 들렀다 가야 해서요.",
		"8시 40분까지 교실로 오면 됩니다. 늦으면 담임에게 바로 연락 주세요.",
		"오늘 숙제는 수학 익힘책 24~25쪽입니다. https://school.example/notice/2026 공지도 확인해 주세요.",
		"선생님, 오늘 아이가 조금 아파서 조퇴해도 될까요?",
		"네, 보건실에 들렀다가 보내겠습니다. 내일 상태 알려 주세요.",
		"감사합니다. 내일 아침에 연락드릴게요.",
		"다음 주 월요일은 개교기념일로 휴업합니다.",
		"ㅋㅋ 알겠어요",
		"Please bring the signed permission slip by Friday.",
		"학부모 상담 주간 신청은 이번 주 금요일까지입니다. 원하시는 시간을 회신해 주세요.",
	}
)

func userName(i int) (name, role string) {
	name = familyNames[i%len(familyNames)] + givenNames[(i/len(familyNames))%len(givenNames)]
	switch {
	case i == 1 || i%20 == 0:
		return name + " 선생님", "teacher"
	case i%2 == 0:
		return name + " 보호자", "parent"
	}
	return name, "student"
}

type conv struct {
	kind     string
	title    string
	lo, hi   int32   // a direct conversation's pair
	creator  int32   // a group's admin
	members  []int32 // members[0] is the creator (a direct one: lo)
	count    int64   // messages
	lastAt   time.Time
	lastSent map[int32]int64 // each member's last message's seq
}

// Load fills the fresh, migrated database at ownerDSN (a superuser's) with cfg's history
// and answers what it made. The messages go in by COPY without their keys, which are built
// after; the triggers (which number messages one by one) are off for the load, which
// writes every counter they would have: last_seq, last_message_at, the senders' watermarks.
func Load(ctx context.Context, ownerDSN string, cfg Config) (Plan, error) {
	if err := cfg.validate(); err != nil {
		return Plan{}, fmt.Errorf("historygen: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	started := time.Now()
	db, err := sql.Open("postgres", ownerDSN)
	if err != nil {
		return Plan{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return Plan{}, err
	}
	defer conn.Close()
	var n int64
	if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM conversations)`).Scan(&n); err != nil {
		return Plan{}, fmt.Errorf("historygen: %w (is the database migrated?)", err)
	}
	if n != 0 {
		return Plan{}, errors.New("historygen: the database has users or conversations already: want a fresh one")
	}
	for _, s := range []string{
		`SET session_replication_role = replica`, // no triggers, no foreign key checks
		`SET maintenance_work_mem = '512MB'`,
		`SET synchronous_commit = off`,
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return Plan{}, fmt.Errorf("historygen: %s: %w", s, err)
		}
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d657373656e6765))
	plan := Plan{Org: cfg.Org, Zone: "bench-zone-1", Issuer: issuer, Sub: "hist-user-1", UserID: 1,
		Users: cfg.Users, Conversations: cfg.Conversations, Messages: cfg.Messages}
	plan.Name, plan.Role = userName(1)

	if err := conn.QueryRowContext(ctx, `INSERT INTO organizations (portal_id, name) VALUES ($1, '벤치 학교') RETURNING id`,
		cfg.Org).Scan(&plan.OrgID); err != nil {
		return plan, fmt.Errorf("historygen: organization: %w", err)
	}
	var zones pq.Int64Array
	if err := conn.QueryRowContext(ctx,
		`WITH z AS (INSERT INTO zones (org_id, portal_id, name)
		            SELECT $1, 'bench-zone-' || i, i || '캠퍼스' FROM generate_series(1, $2) i RETURNING id, portal_id)
		 SELECT array_agg(id ORDER BY substring(portal_id FROM 12)::int) FROM z`, plan.OrgID, cfg.Zones).Scan(&zones); err != nil {
		return plan, fmt.Errorf("historygen: zones: %w", err)
	}
	plan.ZoneID = zones[0]
	t0 := time.Now().Add(-cfg.Span - time.Hour).Truncate(time.Second)

	// Users 1..Users, each in zone 1 + i % Zones (user 1 in zone 1).
	err = copyRows(ctx, conn, "users", []string{"id", "issuer", "sub", "org_id", "zone_id", "name", "role", "locale", "created_at", "updated_at"},
		func(emit func(...any) error) error {
			for i := 1; i <= cfg.Users; i++ {
				name, role := userName(i)
				if err := emit(int64(i), issuer, "hist-user-"+strconv.Itoa(i), plan.OrgID, zones[(i-1)%len(zones)], name, role, "ko", t0, t0); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return plan, err
	}

	convs := makeConversations(cfg, rng)
	assignCounts(cfg, convs, rng)
	for i, c := range convs {
		if c.count > 100_000 {
			plan.Over100k++
		}
		if contains(c.members, 1) {
			if plan.Thread == 0 || c.count > convs[plan.Thread-1].count {
				plan.Thread = int64(i + 1)
			}
		}
	}
	plan.ThreadLastSeq, plan.ThreadMembers = convs[plan.Thread-1].count, len(convs[plan.Thread-1].members)

	// The messages without their keys: built after the copy, faster than row by row.
	keys, err := dropMessageKeys(ctx, conn)
	if err != nil {
		return plan, err
	}
	if err := copyMessages(ctx, conn, cfg, convs, plan.OrgID, t0, rng); err != nil {
		return plan, err
	}

	err = copyRows(ctx, conn, "conversations", []string{"id", "org_id", "kind", "title", "direct_user_lo", "direct_user_hi",
		"last_seq", "last_message_at", "created_by", "created_at", "updated_at", "member_count"},
		func(emit func(...any) error) error {
			for i, c := range convs {
				var lo, hi any
				if c.kind == "direct" {
					lo, hi = int64(c.lo), int64(c.hi)
				}
				created := t0.Add(-time.Duration(len(convs)-i) * time.Minute)
				last := c.lastAt
				if c.count == 0 {
					last = created
				}
				if err := emit(int64(i+1), plan.OrgID, c.kind, c.title, lo, hi, c.count, last, int64(c.creator), created, last, len(c.members)); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return plan, err
	}
	err = copyRows(ctx, conn, "conversation_participants", []string{"conversation_id", "user_id", "org_id", "role", "joined_at"},
		func(emit func(...any) error) error {
			for i, c := range convs {
				created := t0.Add(-time.Duration(len(convs)-i) * time.Minute)
				for _, m := range c.members {
					role := "member"
					if c.kind == "group" && m == c.creator {
						role = "admin"
					}
					if err := emit(int64(i+1), int64(m), plan.OrgID, role, created); err != nil {
						return err
					}
				}
			}
			return nil
		})
	if err != nil {
		return plan, err
	}
	// Read receipts: most members have read everything, many are a few messages behind,
	// some far behind or never opened the conversation; a sender has read up to their own
	// last message at least, as the numbering trigger makes sure.
	err = copyRows(ctx, conn, "read_receipts", []string{"conversation_id", "user_id", "org_id", "last_read_seq", "read_at"},
		func(emit func(...any) error) error {
			for i, c := range convs {
				for _, m := range c.members {
					read := max(readSeq(c.count, rng), c.lastSent[m])
					if m == 1 {
						plan.HeavyConvs++
						if read < c.count {
							plan.HeavyUnread++
						}
					}
					if read <= 0 {
						continue // never opened: no receipt
					}
					plan.Receipts++
					if err := emit(int64(i+1), int64(m), plan.OrgID, read, c.lastAt); err != nil {
						return err
					}
				}
			}
			return nil
		})
	if err != nil {
		return plan, err
	}
	plan.Seconds.Copy = time.Since(started).Seconds()

	fmt.Fprintf(cfg.Log, "historygen: copied in %.1f s; building the messages' keys\n", plan.Seconds.Copy)
	t := time.Now()
	if err := restoreMessageKeys(ctx, conn, keys); err != nil {
		return plan, err
	}
	for _, s := range []string{
		`SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))`,
		`SELECT setval(pg_get_serial_sequence('conversations', 'id'), (SELECT max(id) FROM conversations))`,
		`SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT max(id) FROM messages))`,
		`RESET session_replication_role`,
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return plan, fmt.Errorf("historygen: %s: %w", s, err)
		}
	}
	plan.Seconds.Indexes = time.Since(t).Seconds()
	fmt.Fprintf(cfg.Log, "historygen: keys in %.1f s; VACUUM ANALYZE\n", plan.Seconds.Indexes)
	t = time.Now()
	if _, err := conn.ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
		return plan, fmt.Errorf("historygen: vacuum: %w", err)
	}
	plan.Seconds.Vacuum = time.Since(t).Seconds()
	plan.Seconds.Total = time.Since(started).Seconds()
	return plan, nil
}

// readSeq draws a member's read watermark in a conversation of n messages: 60 % read all,
// 30 % a few behind, 7 % far behind, 3 % never opened it.
func readSeq(n int64, rng *rand.Rand) int64 {
	if n == 0 {
		return 0
	}
	switch p := rng.IntN(100); {
	case p < 60:
		return n
	case p < 90:
		return max(0, n-1-int64(rng.ExpFloat64()*5))
	case p < 97:
		return rng.Int64N(n + 1)
	}
	return 0
}

func contains(s []int32, x int32) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// makeConversations draws the conversations: the big groups (the heavy user's), the
// classes (the first HeavyClasses the heavy user's), the heavy user's direct ones and
// other pairs.
func makeConversations(cfg Config, rng *rand.Rand) []*conv {
	convs := make([]*conv, 0, cfg.Conversations)
	group := func(creator int32, size int, title string) *conv {
		seen := map[int32]bool{creator: true}
		members := []int32{creator}
		for len(members) < size {
			u := int32(2 + rng.IntN(cfg.Users-1))
			if !seen[u] {
				seen[u] = true
				members = append(members, u)
			}
		}
		return &conv{kind: "group", title: title, creator: creator, members: members}
	}
	for i := range cfg.BigGroups {
		convs = append(convs, group(1, cfg.BigSize, "전체 학부모 "+strconv.Itoa(i+1)))
	}
	teachers := cfg.Users / 20
	for i := range cfg.Classes {
		creator := int32(1)
		if i >= cfg.HeavyClasses {
			creator = int32(20 * (1 + rng.IntN(max(teachers, 1))))
			if creator > int32(cfg.Users) || creator == 1 {
				creator = 2
			}
		}
		title := strconv.Itoa(1+i%6) + "학년 " + strconv.Itoa(1+i/6) + "반"
		// Members are drawn from users 2..Users: the heavy user is in their own classes only.
		convs = append(convs, group(creator, cfg.ClassSize, title))
	}
	pairs := map[[2]int32]bool{}
	direct := func(a, b int32) *conv {
		lo, hi := min(a, b), max(a, b)
		pairs[[2]int32{lo, hi}] = true
		return &conv{kind: "direct", lo: lo, hi: hi, creator: lo, members: []int32{lo, hi}}
	}
	heavyDirects := cfg.HeavyConvs - cfg.BigGroups - cfg.HeavyClasses
	for i := range heavyDirects {
		convs = append(convs, direct(1, int32(2+i)))
	}
	for len(convs) < cfg.Conversations {
		a, b := int32(2+rng.IntN(cfg.Users-1)), int32(2+rng.IntN(cfg.Users-1))
		if a == b || pairs[[2]int32{min(a, b), max(a, b)}] {
			continue
		}
		convs = append(convs, direct(a, b))
	}
	return convs
}

// assignCounts shares the messages: a quarter to the big groups (falling off with rank, so
// the first ones hold well over 100,000 each at ten million), two fifths to the classes and
// the rest to the direct conversations, each with a long tail (log-normal): many direct
// conversations have a handful of messages, some none.
func assignCounts(cfg Config, convs []*conv, rng *rand.Rand) {
	weights := make([]float64, len(convs))
	share := func(from, to int, part float64, w func(i int) float64) {
		var sum float64
		for i := from; i < to; i++ {
			weights[i] = w(i - from)
			sum += weights[i]
		}
		for i := from; i < to; i++ {
			weights[i] *= part / sum
		}
	}
	big, classes := 0.25, 0.40
	if cfg.BigGroups == 0 {
		classes += big
		big = 0
	}
	if cfg.Classes == 0 {
		big += classes
		classes = 0
	}
	directs := 1 - big - classes
	if cfg.directs() == 0 {
		big, classes = big/(big+classes), classes/(big+classes)
	}
	share(0, cfg.BigGroups, big, func(i int) float64 { return 1 / math.Pow(float64(i+1), 0.7) })
	share(cfg.BigGroups, cfg.BigGroups+cfg.Classes, classes, func(int) float64 { return math.Exp(0.8 * rng.NormFloat64()) })
	share(cfg.BigGroups+cfg.Classes, len(convs), directs, func(int) float64 { return math.Exp(1.5 * rng.NormFloat64()) })
	var total int64
	for i, c := range convs {
		c.count = int64(weights[i] * float64(cfg.Messages))
		total += c.count
	}
	// What flooring left goes to the largest conversations, one each.
	order := make([]int, len(convs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return weights[order[a]] > weights[order[b]] })
	for i := 0; total < cfg.Messages; i = (i + 1) % len(order) {
		convs[order[i]].count++
		total++
	}
}

// fenwick draws conversations in proportion to the messages they have left, so that
// conversations interleave in time (and on disk) as they do in use.
type fenwick []int64

func (f fenwick) add(i int, d int64) {
	for i++; i < len(f); i += i & -i {
		f[i] += d
	}
}

// find answers the index whose cumulative range holds r (0 <= r < total).
func (f fenwick) find(r int64) int {
	pos := 0
	for step := 1 << (63 - bits.LeadingZeros64(uint64(len(f)-1))); step > 0; step >>= 1 {
		if next := pos + step; next < len(f) && f[next] <= r {
			pos = next
			r -= f[next]
		}
	}
	return pos
}

// copyMessages copies every message, in time order over all conversations: ids and
// created_at grow together, and each conversation's seqs run 1..count.
func copyMessages(ctx context.Context, conn *sql.Conn, cfg Config, convs []*conv, orgID int64, t0 time.Time, rng *rand.Rand) error {
	tree := make(fenwick, len(convs)+1)
	seqs := make([]int64, len(convs))
	for i, c := range convs {
		tree.add(i, c.count)
		c.lastSent = map[int32]int64{}
	}
	step := cfg.Span / time.Duration(cfg.Messages)
	var uuid [16]byte
	var text [36]byte
	return copyRows(ctx, conn, "messages", []string{"id", "conversation_id", "org_id", "seq", "sender_id", "client_msg_id", "kind", "body", "created_at"},
		func(emit func(...any) error) error {
			for n := int64(0); n < cfg.Messages; n++ {
				ci := tree.find(rng.Int64N(cfg.Messages - n))
				tree.add(ci, -1)
				c := convs[ci]
				seqs[ci]++
				sender := c.members[rng.IntN(len(c.members))]
				if c.kind == "group" && rng.IntN(3) == 0 {
					sender = c.creator // the teacher writes a third of a group's messages
				}
				c.lastSent[sender] = seqs[ci]
				at := t0.Add(time.Duration(n) * step)
				c.lastAt = at
				for i := 0; i < 16; i += 8 {
					v := rng.Uint64()
					for j := range 8 {
						uuid[i+j] = byte(v >> (8 * j))
					}
				}
				uuid[6], uuid[8] = uuid[6]&0x0f|0x40, uuid[8]&0x3f|0x80
				hex.Encode(text[0:8], uuid[0:4])
				text[8] = '-'
				hex.Encode(text[9:13], uuid[4:6])
				text[13] = '-'
				hex.Encode(text[14:18], uuid[6:8])
				text[18] = '-'
				hex.Encode(text[19:23], uuid[8:10])
				text[23] = '-'
				hex.Encode(text[24:36], uuid[10:16])
				body := bodies[rng.IntN(len(bodies))]
				if err := emit(n+1, int64(ci+1), orgID, seqs[ci], int64(sender), string(text[:]), "text", body, at); err != nil {
					return err
				}
				if (n+1)%1_000_000 == 0 {
					fmt.Fprintf(cfg.Log, "historygen: %d messages\n", n+1)
				}
			}
			return nil
		})
}

// copyRows copies the rows gen emits into table, in one transaction.
func copyRows(ctx context.Context, conn *sql.Conn, table string, cols []string, gen func(emit func(...any) error) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return fmt.Errorf("historygen: copy %s: %w", table, err)
	}
	err = gen(func(v ...any) error {
		_, err := stmt.ExecContext(ctx, v...)
		return err
	})
	if err == nil {
		_, err = stmt.ExecContext(ctx)
	}
	if cerr := stmt.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("historygen: copy %s: %w", table, err)
	}
	return nil
}

// messageKey is a key or index of messages (or a foreign key that depends on its primary
// key), dropped for the load and made again after.
type messageKey struct {
	table, name, def string
	index            bool // a plain index: def is its CREATE INDEX
}

func dropMessageKeys(ctx context.Context, conn *sql.Conn) ([]messageKey, error) {
	rows, err := conn.QueryContext(ctx, `
		SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), false, contype = 'f'
		  FROM pg_constraint
		 WHERE (conrelid = 'messages'::regclass AND contype IN ('p', 'u'))
		    OR (confrelid = 'messages'::regclass AND contype = 'f')
		UNION ALL
		SELECT 'messages', indexname, indexdef, true, false
		  FROM pg_indexes i
		 WHERE schemaname = 'public' AND tablename = 'messages'
		   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.conrelid = 'messages'::regclass)
		 ORDER BY 5 DESC`) // foreign keys first
	if err != nil {
		return nil, fmt.Errorf("historygen: the messages' keys: %w", err)
	}
	var keys []messageKey
	for rows.Next() {
		var k messageKey
		var fk bool
		if err := rows.Scan(&k.table, &k.name, &k.def, &k.index, &fk); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		s := `ALTER TABLE ` + k.table + ` DROP CONSTRAINT ` + pq.QuoteIdentifier(k.name)
		if k.index {
			s = `DROP INDEX ` + pq.QuoteIdentifier(k.name)
		}
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("historygen: %s: %w", s, err)
		}
	}
	return keys, nil
}

// restoreMessageKeys makes the keys again, in the reverse order: the primary and unique
// keys before the foreign keys that need them.
func restoreMessageKeys(ctx context.Context, conn *sql.Conn, keys []messageKey) error {
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		s := `ALTER TABLE ` + k.table + ` ADD CONSTRAINT ` + pq.QuoteIdentifier(k.name) + ` ` + k.def
		if k.index {
			s = k.def
		}
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("historygen: %s: %w", s, err)
		}
	}
	return nil
}
