package messenger

import "time"

// PushDevice is one of a user's push subscriptions as the device list shows it: the
// browser it came from and when a push last went to it. The keys stay in the database.
type PushDevice struct {
	ID         string
	Endpoint   string
	Browser    string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}
