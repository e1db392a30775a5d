package loadtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"time"
)

// readMix is what the API reads do: gets of messages written final at
// least settle ago (picked from the recent ones, so mostly of the hot
// accounts), and range lists of a Zipf-drawn account (so mostly the hot
// ones) over the last few minutes to a day, sometimes filtered by status.
const (
	readGetShare    = 0.3
	readSettle      = 2 * time.Second
	readStatusShare = 0.2
)

var listWindows = [...]struct {
	d time.Duration
	p float64
}{{5 * time.Minute, 0.5}, {time.Hour, 0.3}, {24 * time.Hour, 0.2}}

// reader is the read side of a run. Its op issues one API read; it is safe
// for concurrent use.
type reader struct {
	api    *apiClient
	gen    *Generator
	recent *recentFinals
	seed   uint64
}

// opError is a failed operation with the kind the report counts it under.
type opError struct {
	kind string
	err  error
}

func (e *opError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// kindOf returns the report's error kind of an operation's error, with
// fallback for an error that names none.
func kindOf(err error, fallback string) string {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.kind
	}
	return fallback
}

func (rd *reader) op(ctx context.Context, seq int64) error {
	r := rand.New(rand.NewPCG(rd.seed, uint64(seq)))
	now := time.Now()
	if r.Float64() < readGetShare {
		if m, ok := rd.recent.pick(r, now.Add(-readSettle)); ok {
			return readErr(rd.api.get(ctx, messagePath(m.account, m.sid), nil, nil))
		}
	}
	account := rd.gen.Account(rd.gen.SampleAccount(r))
	window := listWindows[len(listWindows)-1].d
	u := r.Float64()
	for _, w := range listWindows {
		if u < w.p {
			window = w.d
			break
		}
		u -= w.p
	}
	q := url.Values{"start": {apiTime(now.Add(-window))}, "end": {apiTime(now)}}
	if r.Float64() < readStatusShare {
		q["status"] = []string{"delivered", "read"}
	}
	return readErr(rd.api.get(ctx, listPath(account), q, nil))
}

func readErr(err error) error {
	if err == nil {
		return nil
	}
	return &opError{kind: "read_" + errorKind(err), err: err}
}
