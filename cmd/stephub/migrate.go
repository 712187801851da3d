package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stephub/stephub/storage"
)

// migrate applies the schema and exits.
func migrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flagSet("migrate", stderr)
	dbURL := databaseFlag(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := storage.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "migrated", store.Dialect(), "database")
	return nil
}
