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
//   - run.go: Run, `loadtest run`'s engine, and its Deps. It wires:
//   - generate.go: the seeded message generator (Zipf accounts, channels,
//     bodies, 3–5 lifecycle events with bounded reordering, duplicates,
//     non-final-only messages, schema v1/v2); a message's plan is a pure
//     function of its index, so the verifier regenerates it.
//   - slots.go: kafka mode's spreading of each message's events over the
//     write schedule's slots, and the plan cache; kafka.go: the sarama
//     AsyncProducer writer; direct.go: the store.WriteBatch writer.
//   - ledger.go: which messages' writes failed, and the final states written
//     (for the reads' gets and the probes).
//   - reads.go, apiclient.go: API reads and the API client; probe.go: end-to-
//     end latency and index lag of a sample of messages; scrape.go: the
//     service's /metrics (consumer lag, CPU, records consumed).
//   - verify.go: checking every message in the table with store.BatchGet.
//   - summary.go, html.go, svg.go, progress.go: the terminal table, the
//     self-contained HTML report with inline SVG charts, and the live
//     progress line (terminals only).
//
// # Running a test
//
// Run(ctx, cfg, Deps{Store: st, Progress: os.Stdout, Log: log}) returns the
// evaluated report (see Run for its phases); cmd/loadtest is flags around it.
//
// Every goroutine this package starts is owned by the call that starts it
// and has ended when that call returns.
package loadtest
