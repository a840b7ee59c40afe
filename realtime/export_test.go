package realtime

import "time"

// SetRedisTimings shortens the Redis engine's health-check timings for
// engines created until the returned restore is called, so fault tests need
// not wait for the production values. Not safe with parallel tests.
func SetRedisTimings(ping, read, waitRetry time.Duration) (restore func()) {
	old := defaultRedisTimings
	defaultRedisTimings.ping = ping
	defaultRedisTimings.read = read
	defaultRedisTimings.waitRetry = waitRetry
	return func() { defaultRedisTimings = old }
}
