package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/stephub/stephub/auth"
)

// token prints an access token signed with the same secret serve uses.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flagSet("token", stderr)
	sub := fs.String("sub", "", "user id (required)")
	email := fs.String("email", "", "email address")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	secret := secretFlag(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: -sub is required")
	}
	if *ttl <= 0 {
		return errors.New("token: -ttl must be positive")
	}
	if *secret == "" {
		*secret = devJWTSecret
	}
	signer, err := auth.NewSigner(*secret)
	if err != nil {
		return err
	}
	t, err := signer.Issue(*sub, *email, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, t)
	return nil
}
