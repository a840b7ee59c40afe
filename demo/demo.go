// Package demo defines the demo organizations, users and conversations of dev mode, and
// loads them through the same store calls the application uses.
package demo

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// Issuer is the token issuer demo users are stored under; it matches the default
// MESSENGER_JWT_ISSUER so that dev sign-in finds them.
const Issuer = "dreamseed-portal"

// Org is a demo organization with one zone.
type Org struct {
	ID, Name, Zone string
}

// User is a demo user as the portal would describe them.
type User struct {
	Sub, Name, Email, Role string
	Org                    Org
}

// Orgs are the demo organizations: two schools, so that tenancy is visible in dev mode.
var (
	School = Org{ID: "demo-org-dreamseed", Name: "드림시드초등학교", Zone: "demo-zone-grade5"}
	Middle = Org{ID: "demo-org-saessak", Name: "새싹중학교", Zone: "demo-zone-grade2"}
	Orgs   = []Org{School, Middle}
)

// Users are the demo users of both schools.
var Users = []User{
	{Sub: "demo-teacher-kim", Name: "김선영", Email: "kim.sy@school.example", Role: messenger.RoleTeacher, Org: School},
	{Sub: "demo-student-lee", Name: "이민준", Email: "", Role: messenger.RoleStudent, Org: School},
	{Sub: "demo-student-park", Name: "박서연", Email: "", Role: messenger.RoleStudent, Org: School},
	{Sub: "demo-parent-choi", Name: "최지훈", Email: "choi.jh@home.example", Role: messenger.RoleParent, Org: School},
	{Sub: "demo-admin-jung", Name: "정수민", Email: "jung.sm@school.example", Role: messenger.RoleAdmin, Org: School},
	{Sub: "demo-teacher-han", Name: "한예린", Email: "han.yr@saessak.example", Role: messenger.RoleTeacher, Org: Middle},
	{Sub: "demo-student-oh", Name: "오준서", Email: "", Role: messenger.RoleStudent, Org: Middle},
	{Sub: "demo-parent-yoon", Name: "윤하은", Email: "yoon.he@home.example", Role: messenger.RoleParent, Org: Middle},
}

// UserBySub answers the demo user the portal would call sub.
func UserBySub(sub string) (User, bool) {
	for _, u := range Users {
		if u.Sub == sub {
			return u, true
		}
	}
	return User{}, false
}

type line struct {
	from string // sub
	body string
}

type conversation struct {
	title   string // "" for a direct conversation
	zone    bool   // the announcements of the first member's zone
	members []string
	lines   []line
}

var conversations = []conversation{
	{
		title:   "5학년 2반 알림방",
		members: []string{"demo-teacher-kim", "demo-student-lee", "demo-student-park", "demo-parent-choi"},
		lines: []line{
			{"demo-teacher-kim", "안녕하세요, 5학년 2반 담임 김선영입니다. 이 방에서 반 소식을 전해 드릴게요."},
			{"demo-teacher-kim", "내일은 현장체험학습 날입니다. 8시 40분까지 운동장으로 모여 주세요.\n준비물: 도시락, 물, 모자"},
			{"demo-student-park", "선생님 비가 오면 어떻게 하나요?"},
			{"demo-teacher-kim", "비가 오면 실내 프로그램으로 바뀝니다. 안내문은 https://dreamseed.example/notice/512 에서 볼 수 있어요."},
			{"demo-parent-choi", "감사합니다 선생님 😊"},
		},
	},
	{
		members: []string{"demo-teacher-kim", "demo-parent-choi"},
		lines: []line{
			{"demo-parent-choi", "선생님, 지훈이가 오늘 병원에 들러야 해서 조금 늦을 것 같습니다."},
			{"demo-teacher-kim", "네, 알려 주셔서 감사합니다. 도착하면 교무실에 들르라고 해 주세요."},
		},
	},
	{
		members: []string{"demo-student-lee", "demo-student-park"},
		lines: []line{
			{"demo-student-lee", "서연아 수학 숙제 몇 쪽까지야?"},
			{"demo-student-park", "42쪽부터 45쪽까지!"},
			{"demo-student-lee", "고마워 👍"},
		},
	},
	{
		members: []string{"demo-teacher-han", "demo-parent-yoon"},
		lines: []line{
			{"demo-teacher-han", "어머님, 다음 주 상담 일정 괜찮으신 시간 알려 주세요."},
			{"demo-parent-yoon", "화요일 오후 4시 괜찮습니다."},
		},
	},
	{
		zone:    true,
		members: []string{"demo-teacher-kim"},
		lines: []line{
			{"demo-teacher-kim", "[안내] 12월 3일(수)은 개교기념일로 휴업합니다. 방과후 교실도 쉽니다."},
		},
	},
}

// Load stores the demo users, conversations and messages. It is idempotent: running it
// again finds what is there (messages carry fixed client_msg_ids) and adds nothing twice.
func Load(ctx context.Context, db *store.DB) error {
	users := make(map[string]messenger.User, len(Users))
	for _, u := range Users {
		stored, err := db.SignIn(ctx, store.SignInParams{
			Issuer: Issuer, Sub: u.Sub, OrgID: u.Org.ID, ZoneID: u.Org.Zone,
			Name: u.Name, Email: u.Email, Role: u.Role,
		})
		if err != nil {
			return fmt.Errorf("demo user %s: %w", u.Sub, err)
		}
		users[u.Sub] = stored
	}
	for i, c := range conversations {
		owner := users[c.members[0]]
		var convID int64
		err := db.InTx(ctx, owner.Identity(), func(tx *store.Tx) error {
			var err error
			if c.zone {
				convID, _, err = tx.ZoneAnnouncement(ctx)
				return err
			}
			if c.title == "" {
				convID, _, err = tx.DirectConversation(ctx, users[c.members[1]].ID)
				return err
			}
			if convID, err = tx.ConversationByTitle(ctx, c.title); err == nil {
				return nil
			} else if messenger.ErrorCode(err) != messenger.ENOTFOUND {
				return err
			}
			var ids []int64
			for _, m := range c.members[1:] {
				ids = append(ids, users[m].ID)
			}
			convID, err = tx.CreateGroup(ctx, c.title, ids)
			return err
		})
		if err != nil {
			return fmt.Errorf("demo conversation %d: %w", i, err)
		}
		for j, l := range c.lines {
			clientID := uuid.NewSHA1(uuid.NameSpaceURL, []byte(fmt.Sprintf("dreamseed-demo:%d:%d", i, j))).String()
			err := db.InTx(ctx, users[l.from].Identity(), func(tx *store.Tx) error {
				_, err := tx.InsertMessage(ctx, convID, store.NewMessage{
					Kind: messenger.MessageText, Body: l.body, ClientMsgID: &clientID, CanAnnounce: c.zone,
				})
				return err
			})
			if err != nil {
				return fmt.Errorf("demo message %d.%d: %w", i, j, err)
			}
		}
	}
	return nil
}
