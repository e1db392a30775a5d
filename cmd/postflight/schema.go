package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"

	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/envflag"
)

// errIncompatible: schema check found an incompatibility (exit 1).
var errIncompatible = errors.New("schema is not fully compatible")

// runSchema is `postflight schema check NEW.avsc [--against contract|registry]`:
// NEW must be fully compatible (backward and forward, by Avro resolution)
// with every earlier version: the shipped contracts, or every version of
// the registry subject.
func runSchema(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: postflight schema check NEW.avsc [--against contract|registry] [--schema-registry URL] [--subject S]")
	}
	args = args[1:]
	fs := newFlagSet("postflight schema check", stderr)
	against := fs.String("against", "contract", "contract: every shipped version; registry: every version of --subject in --schema-registry")
	reg := fs.String("schema-registry", "", "Confluent Schema Registry URL (with --against registry)")
	subject := fs.String("subject", "message-events-value", "registry subject (with --against registry)")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := envflag.Fill(fs, "POSTFLIGHT", getenv); err != nil {
		return err
	}
	if file == "" {
		return errors.New("schema check: name the new schema file (NEW.avsc)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("schema check: %w", err)
	}
	newer, err := avro.ParseBytes(data)
	if err != nil {
		return fmt.Errorf("schema check: %s is not a valid Avro schema: %w", file, err)
	}
	type version struct {
		name   string
		schema avro.Schema
	}
	var olds []version
	switch *against {
	case "contract":
		for _, c := range ingest.Contracts() {
			olds = append(olds, version{fmt.Sprintf("contract v%d (%s)", c.Version, c.Path), c.Schema})
		}
	case "registry":
		if *reg == "" {
			return errors.New("schema check: --against registry needs --schema-registry URL")
		}
		c, err := registry.NewClient(*reg, registry.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
		if err != nil {
			return fmt.Errorf("schema registry client: %w", err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		vs, err := c.GetVersions(rctx, *subject)
		if err != nil {
			return fmt.Errorf("schema check: versions of %s: %w", *subject, err)
		}
		for _, v := range vs {
			s, err := c.GetSchemaByVersion(rctx, *subject, v)
			if err != nil {
				return fmt.Errorf("schema check: %s version %d: %w", *subject, v, err)
			}
			olds = append(olds, version{fmt.Sprintf("%s version %d", *subject, v), s})
		}
	default:
		return fmt.Errorf("--against: want contract or registry, got %q", *against)
	}
	bad := 0
	for _, old := range olds {
		incs := ingest.CheckFull(newer, old.schema)
		if len(incs) == 0 {
			fmt.Fprintf(stdout, "ok    %s\n", old.name)
			continue
		}
		bad++
		fmt.Fprintf(stdout, "FAIL  %s\n", old.name)
		for _, inc := range incs {
			fmt.Fprintf(stdout, "      %s\n", inc)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%w with %d of %d earlier versions", errIncompatible, bad, len(olds))
	}
	fmt.Fprintf(stdout, "%s is fully compatible with all %d earlier versions\n", file, len(olds))
	return nil
}
