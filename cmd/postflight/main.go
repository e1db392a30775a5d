// Command postflight is the Postflight service: `serve` (ingest + API),
// `dev` (the whole stack on embedded Kafka and DynamoDB Local), `table
// create`, and `produce` (send test events).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "postflight:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: postflight <command> [flags]

commands:
  serve          run ingest and the API (production)
  dev            run the whole stack locally: embedded Kafka, DynamoDB Local, ingest, API
  table create   create the DynamoDB table and its index
  produce        send a message's lifecycle events to Kafka (testing, README example)
  shards show    show an account's index shard schedule
  shards set     raise an account's index shards now, or lower them from a later time
  schema check   check a new event schema's full compatibility with every earlier version
  replay         re-ingest a range of the topic (or the dead-letter topic) with its own reader
  reconcile      compare a range's final states with the store; --repair re-writes the differences

Every flag can also be set as POSTFLIGHT_<FLAG> (e.g. POSTFLIGHT_BROKERS).
Run 'postflight <command> -h' for a command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, args[1:], getenv, stdout, stderr)
	case "table":
		if len(args) < 2 || args[1] != "create" {
			return errors.New("usage: postflight table create [flags]")
		}
		return runTableCreate(ctx, args[2:], getenv, stderr)
	case "produce":
		return runProduce(ctx, args[1:], getenv, stdout, stderr)
	case "shards":
		return runShards(ctx, args[1:], getenv, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, args[1:], getenv, stdout, stderr)
	case "replay":
		return runReplay(ctx, args[1:], getenv, stdout, stderr)
	case "schema":
		return runSchema(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
