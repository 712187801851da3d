package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stephub/stephub/storage"
)

// backup copies a SQLite database to a new file, safely while servers run
// on it.
func backup(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flagSet("backup", stderr)
	dbURL := databaseFlag(fs, getenv)
	out := fs.String("o", "", "the file to write the copy to; it must not exist")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("backup: usage: stephub backup -o FILE")
	}
	store, err := storage.Open(ctx, *dbURL, storage.Existing())
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, *out); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "backed up the sqlite database to", *out)
	return nil
}
