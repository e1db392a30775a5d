package envflag

import (
	"flag"
	"io"
	"testing"
)

func TestFill(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := fs.String("dlq-topic", "def", "")
	b := fs.String("group", "def", "")
	c := fs.Int("n", 1, "")
	if err := fs.Parse([]string{"-group", "cli"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"P_DLQ_TOPIC": "env", "P_GROUP": "env-loses"}
	if err := Fill(fs, "P", func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *a != "env" || *b != "cli" || *c != 1 {
		t.Fatalf("got %q %q %d", *a, *b, *c)
	}
	env["P_N"] = "not a number"
	if err := Fill(fs, "P", func(k string) string { return env[k] }); err == nil {
		t.Fatal("bad value accepted")
	}
}
