package main

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dreamseed/messenger/store"
)

// registerProcessMetrics registers on reg what every process has: its build and its
// database pool (go_sql_*{db_name="messenger"}; the job runner's pool is db_name="messenger_jobs").
func registerProcessMetrics(reg prometheus.Registerer, db *store.DB) {
	reg.MustRegister(buildInfo(), collectors.NewDBStatsCollector(db.Pool(), "messenger"))
}

// buildInfo answers messenger_build_info: 1, labelled with the module's version, the VCS
// revision it was built from and the Go version ("unknown" where the binary does not say).
func buildInfo() prometheus.Collector {
	version, revision := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "messenger_build_info",
		Help: "1, labelled with the build's version, VCS revision and Go version.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(version, revision, runtime.Version()).Set(1)
	return g
}
