// Command historygen loads a long history into a fresh messenger database and measures
// the queries that read it. `make bench-history` (bench/history.sh) runs it on ten million
// messages; see docs/performance.md ("Ten million messages").
//
//	historygen load -db OWNER_DSN [-messages 10000000 ...] -plan plan.json
//	historygen store -db APP_DSN -plan plan.json -runs 1000
//	historygen http -url http://127.0.0.1:8105 -plan plan.json -runs 1000
//
// load copies users, conversations, their members, messages and read receipts (COPY, the
// messages' keys built after) and writes what it made, the heavy user and their largest
// conversation, to the plan. store times the five reads through the store's own functions,
// one transaction each as the server opens it, as the heavy user; http times the same
// reads through the running server's JSON API with a portal token it mints. Both answer
// p50/p95/p99 of each and of a ceiling measured in the same run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "load":
		err = loadCmd(ctx, os.Args[2:])
	case "store":
		err = storeCmd(ctx, os.Args[2:])
	case "http":
		err = httpCmd(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "historygen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: historygen load|store|http [flags] (-h for each)")
	os.Exit(2)
}

func loadCmd(ctx context.Context, args []string) error {
	cfg := DefaultConfig()
	var dsn, planPath string
	var seed int64
	fs := flag.NewFlagSet("historygen load", flag.ExitOnError)
	fs.StringVar(&dsn, "db", "", "the fresh, migrated database, as a superuser (the load turns triggers off)")
	fs.StringVar(&planPath, "plan", "plan.json", "where to write what the load made")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "users")
	fs.IntVar(&cfg.Conversations, "conversations", cfg.Conversations, "conversations")
	fs.Int64Var(&cfg.Messages, "messages", cfg.Messages, "messages")
	fs.IntVar(&cfg.BigGroups, "big-groups", cfg.BigGroups, "groups of -big-size members, the heavy user in each")
	fs.IntVar(&cfg.BigSize, "big-size", cfg.BigSize, "members of a big group")
	fs.IntVar(&cfg.Classes, "classes", cfg.Classes, "groups of -class-size members")
	fs.IntVar(&cfg.ClassSize, "class-size", cfg.ClassSize, "members of a class")
	fs.IntVar(&cfg.HeavyConvs, "heavy", cfg.HeavyConvs, "conversations of the heavy user (user 1)")
	fs.IntVar(&cfg.HeavyClasses, "heavy-classes", cfg.HeavyClasses, "classes of the heavy user")
	fs.Int64Var(&seed, "seed", int64(cfg.Seed), "random seed")
	fs.Parse(args)
	if dsn == "" {
		return fmt.Errorf("load: -db is required")
	}
	cfg.Seed = uint64(seed)
	cfg.Log = os.Stderr
	plan, err := Load(ctx, dsn, cfg)
	if err != nil {
		return err
	}
	return writeJSON(planPath, plan)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readPlan(path string) (Plan, error) {
	var p Plan
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(b, &p)
}
