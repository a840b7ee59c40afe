package main

import (
	"context"
	"log/slog"
	"syscall"
)

// raiseOpenFiles raises the process's limit of open files to the hard limit (each live
// stream holds a connection, a descriptor) and logs it, with a warning when it is low for
// a server of many streams. Go's runtime raises the soft limit itself on most systems; this
// does it wherever it did not, and says what the process has.
func raiseOpenFiles(logger *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("open files limit unknown", slog.String("error", err.Error()))
		return
	}
	was := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			logger.Warn("open files limit not raised", slog.Uint64("limit", was), slog.Uint64("hard_limit", lim.Max), slog.String("error", err.Error()))
			return
		}
	}
	level := slog.LevelInfo
	if lim.Cur < lowOpenFiles {
		level = slog.LevelWarn // a few thousand streams will meet it
	}
	logger.Log(context.Background(), level, "open files limit", slog.Uint64("limit", lim.Cur), slog.Uint64("was", was), slog.Uint64("hard_limit", lim.Max))
}

// lowOpenFiles is a limit below which a server of many live streams runs out of descriptors.
const lowOpenFiles = 16384
