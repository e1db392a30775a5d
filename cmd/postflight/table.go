package main

import (
	"context"
	"github.com/postflight/postflight/internal/awsconf"
	"io"

	"github.com/postflight/postflight/store"
)

func runTableCreate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := newFlagSet("postflight table create", stderr)
	var f serveFlags
	f.registerTable(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, _ := newLogger("info", stderr)
	db, err := awsconf.DynamoClient(ctx, f.dynamodbEndpoint, getenv, f.dynamodbAttemptTimeout)
	if err != nil {
		return err
	}
	st, err := store.New(db, store.Config{Table: f.table}, log, nil)
	if err != nil {
		return err
	}
	return st.CreateTable(ctx)
}
