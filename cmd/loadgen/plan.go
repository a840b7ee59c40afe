package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dreamseed/messenger/auth"
)

// benchUser is one simulated portal user.
type benchUser struct {
	Sub   string
	Name  string
	Role  string
	Token string
}

var (
	familyNames = []string{"김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권"}
	givenNames  = []string{"민준", "서연", "도윤", "하은", "시우", "지우", "서준", "하윤", "예준", "지민", "주원", "수아", "지호", "채원", "건우", "다은", "우진", "소율", "현우", "예린"}
)

// makeUsers mints a portal token for each of n users: every tenth one a teacher.
func makeUsers(cfg config, ttl time.Duration) ([]benchUser, error) {
	users := make([]benchUser, cfg.Users)
	for i := range users {
		u := benchUser{
			Sub:  "bench-user-" + strconv.Itoa(i),
			Name: familyNames[i%len(familyNames)] + givenNames[(i/len(familyNames))%len(givenNames)],
			Role: "student",
		}
		if i%10 == 0 {
			u.Role = "teacher"
			u.Name += " 선생님"
		}
		tok, err := auth.MintToken([]byte(cfg.Secret), cfg.Audience, auth.Claims{
			Issuer: cfg.Issuer, Subject: u.Sub, Name: u.Name, OrgID: cfg.Org, ZoneID: cfg.Zone,
			Role: u.Role, Locale: "ko",
		}, ttl)
		if err != nil {
			return nil, fmt.Errorf("mint token: %w", err)
		}
		u.Token = tok
		users[i] = u
	}
	return users, nil
}

// convPlan is a conversation to create: creator asks for it with the others as
// participant_ids.
type convPlan struct {
	Kind    string
	Title   string
	Members []int32 // Members[0] creates it
}

// groupCount reads -groups.
func groupCount(spec string, users, size int) (int, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "auto" {
		return users / size, nil
	}
	f, err := strconv.ParseFloat(spec, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("-groups %q: want auto, a count or a fraction below 1", spec)
	}
	if f < 1 {
		return int(math.Round(f * float64(users) / float64(size))), nil
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("-groups %q: a count of groups is a whole number", spec)
	}
	return int(f), nil
}

// planConversations pairs the users up into direct conversations (0-1, 2-3, ...) and
// puts them into groups of size consecutive users (wrapping around), so that every user
// has a direct conversation and, with -groups auto, exactly one group.
func planConversations(users int, groups string, size int) ([]convPlan, error) {
	if users < 2 {
		return nil, fmt.Errorf("-users must be at least 2")
	}
	n, err := groupCount(groups, users, size)
	if err != nil {
		return nil, err
	}
	if n > 0 && (size < 2 || size > users) {
		return nil, fmt.Errorf("-group-size %d: a group needs 2 to %d members", size, users)
	}
	var plan []convPlan
	for i := 0; i+1 < users; i += 2 {
		plan = append(plan, convPlan{Kind: "direct", Members: []int32{int32(i), int32(i + 1)}})
	}
	for g := range n {
		p := convPlan{Kind: "group", Title: fmt.Sprintf("부하 시험 %d반", g+1)}
		for j := range size {
			p.Members = append(p.Members, int32((g*size+j)%users))
		}
		plan = append(plan, p)
	}
	return plan, nil
}
