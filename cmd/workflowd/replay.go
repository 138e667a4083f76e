package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/workflowd/workflowd/app"
)

// replayUsage is the help of "workflowd replay".
const replayUsage = `usage: workflowd replay [-queue URL] [FILE ...]

Re-handles the stream records of batches the SAM deployment's stream
function gave up on, from their on-failure destination messages (the
StreamFailuresQueue): the records the stream still has go to the projector
and the dispatcher again, and the window they arrived in is reconciled
from the event log (docs/deploy.md, "Stream batches Lambda gave up on").
Each FILE holds one message ("-": standard input); -queue replays and
deletes every message of that queue. Replaying twice changes nothing.

It reads the deployment from the functions' environment variables
(EVENTS_TABLE, VIEWS_TABLE, TOPIC_ARN, WORKFLOWS_QUEUE_URL,
EXECUTIONS_QUEUE_URL, and the optional ones the functions take), and AWS
credentials and region as the AWS SDK does.
`

// runReplay is "workflowd replay".
func runReplay(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("workflowd replay", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { fmt.Fprint(fs.Output(), replayUsage); fs.PrintDefaults() }
	queue := fs.String("queue", "", "URL of the on-failure destination queue to replay and empty")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if *queue == "" && fs.NArg() == 0 {
		fs.Usage()
		return errors.New("replay: give -queue or at least one FILE")
	}
	cfg, err := app.FunctionsConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("replay: the deployment's settings: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f, err := app.NewFunctions(ctx, cfg)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	print := func(what string, r app.ReplayReport) {
		trimmed := ""
		if r.Trimmed {
			trimmed = " (the stream no longer had them)"
		}
		fmt.Fprintf(stdout, "%s: %d records handled again%s; %d aggregates repaired from the event log\n", what, r.Records, trimmed, r.Repaired)
	}
	var errs []error
	for _, name := range fs.Args() {
		body, err := readFile(name, stdin)
		if err == nil {
			var failure app.StreamFailure
			if failure, err = app.ParseStreamFailure(body); err == nil {
				var r app.ReplayReport
				if r, err = f.Replay(ctx, failure); err == nil {
					print(name, r)
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if *queue != "" {
		reports, err := f.ReplayQueue(ctx, *queue)
		for i, r := range reports {
			print(fmt.Sprintf("%s message %d", *queue, i+1), r)
		}
		if len(reports) == 0 && err == nil {
			fmt.Fprintf(stdout, "%s: no messages\n", *queue)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func readFile(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 1<<20))
	}
	return os.ReadFile(name)
}
