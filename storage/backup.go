package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBackupPostgres is Backup's answer on PostgreSQL, whose own tools copy
// a database better than stephub could.
var ErrBackupPostgres = errors.New("stephub backup copies SQLite databases; back PostgreSQL up with pg_dump (see docs/operating.md)")

// Backup writes a copy of the SQLite database to the file path, which must
// not exist. It is safe while servers use the database: SQLite's VACUUM
// INTO reads one snapshot, the committed pages still in the write-ahead log
// included, while writers go on, and writes it as one compact file. The
// copy is written beside path and takes that name once it is on disk, so
// that path holds a whole copy or nothing.
//
// On PostgreSQL it returns ErrBackupPostgres.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.dialect != DialectSQLite {
		return ErrBackupPostgres
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup: %s exists; give a new file", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	tmp := path + ".partial-" + rand.Text()[:8]
	defer os.Remove(tmp) // once linked as path, the copy lives on under that name
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("backup: copy the database: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// A rename would replace a file made meanwhile; a link fails instead.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(filepath.Dir(path)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// syncFile flushes the file or folder name to disk.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
