package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
)

// quietHourRoles are the portal roles a school may give default quiet hours, each from
// MESSENGER_QUIET_HOURS_<ROLE> ("21:00-08:00"; "off" for none). Teachers default to
// 21:00-08:00; the others to none.
var quietHourRoles = []string{messenger.RoleAdmin, messenger.RoleTeacher, messenger.RoleStaff,
	messenger.RoleParent, messenger.RoleStudent}

// loadNotify reads the school's notification rules: role default quiet hours and the
// keyword caps (MESSENGER_MAX_KEYWORDS, MESSENGER_MAX_KEYWORD_CHARS, 1 to 100).
func (c *config) loadNotify(env func(key, def string) string) []error {
	var errs []error
	c.Notify = chat.DefaultNotifyConfig()
	for _, role := range quietHourRoles {
		name := "MESSENGER_QUIET_HOURS_" + strings.ToUpper(role)
		v := env(name, "")
		if v == "" {
			continue
		}
		q, err := chat.ParseQuietHours(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s must be HH:MM-HH:MM (two different times, 24-hour) or off, not %q", name, v))
			continue
		}
		if q == nil {
			delete(c.Notify.QuietDefaults, role)
		} else {
			c.Notify.QuietDefaults[role] = *q
		}
	}
	for _, v := range []struct {
		name string
		dst  *int
	}{{"MESSENGER_MAX_KEYWORDS", &c.Notify.MaxKeywords}, {"MESSENGER_MAX_KEYWORD_CHARS", &c.Notify.MaxKeywordChars}} {
		s := env(v.name, strconv.Itoa(*v.dst))
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > chat.KeywordCeiling {
			errs = append(errs, fmt.Errorf("%s must be a whole number from 1 to %d, not %q", v.name, chat.KeywordCeiling, s))
			continue
		}
		*v.dst = n
	}
	return errs
}
