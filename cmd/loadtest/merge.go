package main

import (
	"context"
	"errors"
	"io"

	"github.com/postflight/postflight/loadtest"
)

// runMerge is `loadtest merge A.json B.json... --json OUT`: the report of
// shard processes that ran side by side, re-evaluated.
func runMerge(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("merge", stderr)
	var out outputs
	fs.StringVar(&out.json, "json", "", "write the merged report as JSON to this file")
	fs.StringVar(&out.html, "html", "", "write a self-contained HTML report to this file")
	crit := addCriteriaFlags(fs, loadtest.DefaultCriteria())
	files, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errors.New("merge: no report files")
	}
	reps := make([]*loadtest.Report, len(files))
	for i, f := range files {
		if reps[i], err = loadtest.ReadReportFile(f); err != nil {
			return err
		}
	}
	merged, err := loadtest.Merge(reps...)
	if err != nil {
		return err
	}
	// The inputs' thresholds stand unless overridden here.
	c := crit.overlay(merged.Thresholds)
	if err := c.Validate(); err != nil {
		return err
	}
	merged.Evaluate(c)
	return finish(merged, out, stdout)
}
