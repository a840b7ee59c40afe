package main

import (
	"context"
	"log/slog"
)

// untilStopped waits until ctx ends (a signal) or a listener fails, logged as what; it
// answers that failure, nil after a signal.
func untilStopped(ctx context.Context, failed <-chan error, logger *slog.Logger, what string) error {
	select {
	case err := <-failed:
		logger.Error(what, slog.String("error", err.Error()))
		return err
	case <-ctx.Done():
		return nil
	}
}
