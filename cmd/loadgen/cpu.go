package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Where the machine's CPU went during the measured window, from /proc (Linux; elsewhere
// the numbers stay zero). On a small machine the server, PostgreSQL and the load
// generator share the cores, and anything else running shows as "other": a run with much
// "other" measured the neighbours as much as the server.

// cpuUsage is in percent of one core (200 = two cores busy).
type cpuUsage struct {
	Cores    int     `json:"cores"`
	WindowS  float64 `json:"window_s"`
	Machine  float64 `json:"machine_pct"`
	Server   float64 `json:"server_pct,omitempty"` // with -pid
	Postgres float64 `json:"postgres_pct"`         // the cluster of -pg-pid, else every process named postgres
	// PostgresEnded is the part of Postgres spent by backends that ended in the window
	// (connections closed and opened again).
	PostgresEnded float64 `json:"postgres_ended_pct"`
	Loadgen       float64 `json:"loadgen_pct"`
	Other         float64 `json:"other_pct"` // machine − server − postgres − loadgen
	// OtherTop names the busiest other processes ("chromium 35%"), so that a run on a
	// shared machine shows what it shared it with; what no live process accounts for
	// (the kernel, processes that ended) is "unattributed".
	OtherTop []string `json:"other_top,omitempty"`
}

type cpuSnap struct {
	at       time.Time
	busy     uint64 // machine, in USER_HZ ticks
	server   uint64
	self     uint64
	postgres map[int]uint64
	pgReaped uint64           // the postmaster's reaped children (ended backends): cutime+cstime
	procs    map[int]procTime // every process, for naming the others

	serverPID, selfPID int
}

type procTime struct {
	comm  string
	ticks uint64
}

const userHZ = 100 // USER_HZ, 100 on every Linux platform Go supports

// takeCPUSnap reads the machine's, the server's (serverPID > 0), the load generator's and
// PostgreSQL's CPU time: with pgPID > 0 the postmaster pgPID and its children, otherwise
// every process named postgres (which takes in other clusters on the machine too).
func takeCPUSnap(serverPID, pgPID int) cpuSnap {
	s := cpuSnap{at: time.Now(), postgres: map[int]uint64{}, procs: map[int]procTime{}}
	if raw, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(raw), "\n")
		f := strings.Fields(line)               // cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f) && i <= 7; i++ { // steal (8) is the hypervisor's, not ours
			if i == 4 || i == 5 { // idle, iowait
				continue
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			s.busy += v
		}
	}
	s.serverPID, s.selfPID = serverPID, os.Getpid()
	if serverPID > 0 {
		s.server, _, _ = procStat(serverPID)
	}
	s.self, _, _ = procStat(os.Getpid())
	if pgPID > 0 {
		s.pgReaped = reapedTicks(pgPID)
	}
	if dir, err := os.ReadDir("/proc"); err == nil {
		for _, e := range dir {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			raw, err := os.ReadFile("/proc/" + e.Name() + "/comm")
			if err != nil {
				continue
			}
			t, ppid, err := procStat(pid)
			if err != nil {
				continue
			}
			comm := strings.TrimSpace(string(raw))
			s.procs[pid] = procTime{comm: comm, ticks: t}
			if (pgPID > 0 && (pid == pgPID || ppid == pgPID)) || (pgPID <= 0 && comm == "postgres") {
				s.postgres[pid] = t
			}
		}
	}
	return s
}

// procStat answers utime+stime and the parent of a process.
func procStat(pid int) (ticks uint64, ppid int, err error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces: fields count from the last ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, 0, os.ErrInvalid
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return ut + st, ppid, nil
}

// reapedTicks answers the CPU time of pid's children that ended and were waited for
// (cutime+cstime): for the postmaster, its backends that closed.
func reapedTicks(pid int) uint64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseUint(f[13], 10, 64)
	cs, _ := strconv.ParseUint(f[14], 10, 64)
	return cu + cs
}

// cpuBetween answers the usage from a to b. PostgreSQL's includes, with -pg-pid, the
// backends that ended in between (the postmaster's reaped children): a server whose pool
// churns connections pays for each new backend.
func cpuBetween(a, b cpuSnap) cpuUsage {
	secs := b.at.Sub(a.at).Seconds()
	u := cpuUsage{Cores: runtime.NumCPU(), WindowS: secs}
	if secs <= 0 || b.busy == 0 {
		return u
	}
	pct := func(ticks uint64) float64 { return float64(ticks) / userHZ / secs * 100 }
	sub := func(x, y uint64) uint64 {
		if x < y {
			return 0
		}
		return x - y
	}
	u.Machine = pct(sub(b.busy, a.busy))
	u.Server = pct(sub(b.server, a.server))
	u.Loadgen = pct(sub(b.self, a.self))
	var pg uint64
	for pid, t := range b.postgres {
		pg += sub(t, a.postgres[pid])
	}
	reaped := sub(b.pgReaped, a.pgReaped)
	pg += reaped
	u.Postgres = pct(pg)
	u.PostgresEnded = pct(reaped)
	u.Other = max(0, u.Machine-u.Server-u.Loadgen-u.Postgres)

	byName := map[string]uint64{}
	attributed := reaped
	for pid, p := range b.procs {
		d := sub(p.ticks, a.procs[pid].ticks)
		if a.procs[pid].comm != "" && a.procs[pid].comm != p.comm {
			d = p.ticks // the pid was reused
		}
		attributed += d
		if _, ours := b.postgres[pid]; ours || pid == b.selfPID || (b.serverPID > 0 && pid == b.serverPID) {
			continue
		}
		byName[p.comm] += d
	}
	if len(b.procs) > 0 {
		byName["unattributed"] = sub(sub(b.busy, a.busy), attributed)
	}
	names := make([]string, 0, len(byName))
	for n, d := range byName {
		if pct(d) >= 2 {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return byName[names[i]] > byName[names[j]] })
	for _, n := range names[:min(len(names), 4)] {
		u.OtherTop = append(u.OtherTop, fmt.Sprintf("%s %.0f%%", n, pct(byName[n])))
	}
	return u
}
