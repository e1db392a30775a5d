// Package loadtest is the SRE load-test toolkit behind cmd/loadtest
// (DESIGN.md §4).
//
// # Files
//
//   - zipf.go: the Zipf account mix, solved for a top account's share, with
//     alias-method sampling; sid.go: synthetic account and message SIDs.
//   - heat.go (with poisson.go): `loadtest heat`, a simulation of the
//     DynamoDB key design (keydesign) that reports write units per partition
//     key per second, and the headroom rate.
//   - schedule.go, pacer.go: open-loop, constant-rate issuing with ramp
//     stages; latency is measured from each operation's intended start, so
//     stalls are not hidden (no coordinated omission).
//   - histogram.go: concurrency-safe HDR latency recorders whose
//     distributions travel encoded in reports and merge exactly.
//   - config.go, report.go, criteria.go, bottleneck.go: the run config, the
//     --json report (Collector builds it), success criteria and exit code,
//     and a one-line diagnosis of what limited the run.
//   - merge.go: joining the reports of shard processes.
//   - summary.go, html.go, svg.go, progress.go: the terminal table, the
//     self-contained HTML report with inline SVG charts, and the live
//     progress line (terminals only).
//
// # Running a test (for the runner that drives the service)
//
//	cfg.Validate()
//	coll := NewCollector()
//	wp, _ := NewPacer(PacerConfig{Schedule: cfg.WriteSchedule(), Workers: cfg.Workers})
//	ws, err := wp.Run(ctx, writeOp, func(r OpResult) {
//		if r.Err != nil { coll.Error(r.Intended, "produce"); return }
//		coll.Write.Record(r.Intended, r.Latency())
//	})
//	// likewise reads on cfg.ReadSchedule(); EndToEnd/IndexLag from the verifier
//	rep, err := coll.Report(cfg, ws, rs)
//	rep.ProducedFinal, rep.Lost, … = …
//	rep.Evaluate(cfg.Criteria)
//
// Every goroutine this package starts is owned by the call that starts it
// and has ended when that call returns.
package loadtest
