package main

import (
	"io"
	"testing"
	"time"
)

// The API's noisy-neighbour flags and the re-stamp rate are flags and
// POSTFLIGHT_* variables like every other (command line beats environment).
func TestLimitFlagsFromEnv(t *testing.T) {
	env := map[string]string{
		"POSTFLIGHT_RATE_PER_TOKEN":     "12.5",
		"POSTFLIGHT_BURST_PER_TOKEN":    "30",
		"POSTFLIGHT_RATE_PER_ACCOUNT":   "-1",
		"POSTFLIGHT_BURST_PER_ACCOUNT":  "7",
		"POSTFLIGHT_MAX_LIST_INFLIGHT":  "9",
		"POSTFLIGHT_LIST_QUEUE_TIMEOUT": "250ms",
		"POSTFLIGHT_REQUEST_TIMEOUT":    "3s",
		"POSTFLIGHT_RESTAMP_RATE":       "50",
	}
	var f serveFlags
	fs := newFlagSet("test", io.Discard)
	f.register(fs)
	if err := parseFlags(fs, []string{"--max-list-inflight", "4"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if f.ratePerToken != 12.5 || f.burstPerToken != 30 || f.ratePerAccount != -1 || f.burstPerAccount != 7 ||
		f.maxListInflight != 4 || f.listQueueTimeout != 250*time.Millisecond || f.requestTimeout != 3*time.Second ||
		f.restampRate != 50 {
		t.Fatalf("flags %+v", f)
	}
	var d serveFlags
	fs = newFlagSet("test", io.Discard)
	d.register(fs)
	if err := parseFlags(fs, nil, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if d.ratePerToken != 500 || d.ratePerAccount != 200 || d.maxListInflight != 32 || d.listQueueTimeout != time.Second ||
		d.requestTimeout != 10*time.Second || d.restampRate != 500 {
		t.Fatalf("defaults %+v", d)
	}
}
