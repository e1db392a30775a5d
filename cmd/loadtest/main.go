// Command loadtest is Postflight's load-test tool for SREs (DESIGN.md §4):
//
//	loadtest heat  --rate N --accounts N --top-share F --item-bytes N [--json FILE]
//	loadtest run   --brokers H:P --topic T --service URL --token TOK --dynamodb-endpoint URL --table NAME
//	               --rate N --duration D --reads-per-sec N [--mode kafka|direct] [--json FILE] [--html FILE]
//	loadtest merge A.json B.json... [--json OUT] [--html FILE]
//
// Every flag may also be set as an environment variable LOADTEST_<FLAG>
// (e.g. LOADTEST_TOKEN); a flag on the command line wins.
//
// Exit status: 0 when every success criterion passed, 1 when one failed
// (the report is still written), 2 on any other error.
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

	"github.com/postflight/postflight/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode maps run's error to the exit status, printing it.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, loadtest.ErrCriteriaFailed):
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	fmt.Fprintln(stderr, "loadtest:", err)
	return 2
}

const usage = `usage: loadtest <command> [flags]

commands:
  heat    simulate the DynamoDB key design under a Zipf account mix
  run     drive events through the service and verify them
  merge   merge the --json reports of several shard processes

Run "loadtest <command> -h" for a command's flags. Any flag can be set as
LOADTEST_<FLAG> in the environment (e.g. LOADTEST_TOKEN).
`

// run executes one loadtest command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "heat":
		return runHeat(ctx, rest, getenv, stdout, stderr)
	case "run":
		return runLoad(ctx, rest, getenv, stdout, stderr)
	case "merge":
		return runMerge(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
