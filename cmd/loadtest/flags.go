package main

import (
	"flag"
	"fmt"
	"github.com/postflight/postflight/internal/envflag"
	"io"
	"strconv"
	"strings"

	"github.com/postflight/postflight/loadtest"
)

// newFlagSet returns a subcommand's flag set, reporting to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("loadtest "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, flags and positional arguments interleaved (so that
// "merge a.json b.json --json out.json" works; after "--" everything is
// positional), then sets every flag not given on the command line from
// LOADTEST_<FLAG> in the environment. It returns the positional arguments.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return positional, envflag.Fill(fs, "LOADTEST", getenv)
}

// criteriaFlags holds the success-criteria override flags of a FlagSet.
type criteriaFlags struct {
	c  loadtest.Criteria
	fs *flag.FlagSet
}

// addCriteriaFlags registers the success-criteria flags, defaulting to c.
func addCriteriaFlags(fs *flag.FlagSet, c loadtest.Criteria) *criteriaFlags {
	cf := &criteriaFlags{c: c, fs: fs}
	fs.Float64Var(&cf.c.MinWriteRateRatio, "min-write-ratio", c.MinWriteRateRatio, "pass when writes/s ≥ this × the requested rate")
	fs.Float64Var(&cf.c.MaxWriteP99Ms, "max-write-p99", c.MaxWriteP99Ms, "pass when write latency p99 ≤ this many ms")
	fs.Float64Var(&cf.c.MaxReadP99Ms, "max-read-p99", c.MaxReadP99Ms, "pass when read latency p99 ≤ this many ms")
	fs.Float64Var(&cf.c.MaxIndexLagP99Ms, "max-index-lag-p99", c.MaxIndexLagP99Ms, "pass when index lag p99 ≤ this many ms")
	fs.Int64Var(&cf.c.MaxLost, "max-lost", c.MaxLost, "pass when at most this many final messages are lost")
	fs.Int64Var(&cf.c.MaxWrong, "max-wrong", c.MaxWrong, "pass when at most this many messages read back wrong")
	return cf
}

// criteria returns the parsed criteria: the defaults given to
// addCriteriaFlags with every flag that was set.
func (cf *criteriaFlags) criteria() loadtest.Criteria { return cf.c }

// overlay returns base with only the criteria that were set (on the command
// line or, through parse, in the environment) replaced.
func (cf *criteriaFlags) overlay(base loadtest.Criteria) loadtest.Criteria {
	out := base
	cf.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "min-write-ratio":
			out.MinWriteRateRatio = cf.c.MinWriteRateRatio
		case "max-write-p99":
			out.MaxWriteP99Ms = cf.c.MaxWriteP99Ms
		case "max-read-p99":
			out.MaxReadP99Ms = cf.c.MaxReadP99Ms
		case "max-index-lag-p99":
			out.MaxIndexLagP99Ms = cf.c.MaxIndexLagP99Ms
		case "max-lost":
			out.MaxLost = cf.c.MaxLost
		case "max-wrong":
			out.MaxWrong = cf.c.MaxWrong
		}
	})
	return out
}

// parseFloats parses a comma-separated list of numbers.
func parseFloats(s string) ([]float64, error) {
	var out []float64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out = append(out, v)
	}
	return out, nil
}
