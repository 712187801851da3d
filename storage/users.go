package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stephub/stephub"
)

const userColumns = "id, email, credits, subscription_status"

// EnsureUser returns the user id, creating it first, with credits and an
// active subscription, if it is unknown. An email fills in a stored empty
// one and otherwise changes nothing, so the first address seen stays.
func (s *Store) EnsureUser(ctx context.Context, id, email string, credits int64) (stephub.User, error) {
	// EnsureUser runs on every authenticated request. A plain read answers
	// almost all of them without the write transaction that, on SQLite,
	// would queue behind every other writer.
	u, err := s.User(ctx, id)
	switch {
	case err == nil && (email == "" || u.Email != ""):
		return u, nil
	case err != nil && !errors.Is(err, stephub.ErrNotFound):
		return stephub.User{}, fmt.Errorf("ensure user %q: %w", id, err)
	}

	err = s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		t := now()
		if err := insertUser(ctx, tx, id, email, credits, t); err != nil {
			return err
		}
		if email != "" {
			if _, err := exec(ctx, tx, "UPDATE users SET email = ?, updated_at = ? WHERE id = ? AND email = ''",
				email, t, id); err != nil {
				return fmt.Errorf("fill in the email: %w", err)
			}
		}
		return get(ctx, tx, &u, "SELECT "+userColumns+" FROM users WHERE id = ?", id)
	})
	if err != nil {
		return stephub.User{}, fmt.Errorf("ensure user %q: %w", id, err)
	}
	return u, nil
}

// insertUser creates the user id with an active subscription unless it
// already exists, in which case it changes nothing.
func insertUser(ctx context.Context, tx *sqlx.Tx, id, email string, credits int64, t time.Time) error {
	_, err := exec(ctx, tx, `INSERT INTO users (id, email, credits, subscription_status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		id, email, credits, stephub.SubscriptionActive, t, t)
	if err != nil {
		return fmt.Errorf("create the user: %w", err)
	}
	return nil
}

// User returns the user id, or stephub.ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (stephub.User, error) {
	var u stephub.User
	if err := get(ctx, s.db, &u, "SELECT "+userColumns+" FROM users WHERE id = ?", id); err != nil {
		return stephub.User{}, fmt.Errorf("user %q: %w", id, err)
	}
	return u, nil
}

// UpdateUser sets the credits and the subscription status of the user id,
// each only when given, and returns the user. An unknown user is created
// first, with newUserCredits and an active subscription, as if it had signed
// in. Values are not validated here beyond the schema's own checks (credits
// may not go below zero, the status must be a known one).
func (s *Store) UpdateUser(ctx context.Context, id string, credits *int64, sub *stephub.SubscriptionStatus, newUserCredits int64) (stephub.User, error) {
	var u stephub.User
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		t := now()
		if err := insertUser(ctx, tx, id, "", newUserCredits, t); err != nil {
			return err
		}
		// A nil pointer is NULL, so COALESCE keeps the stored value.
		if _, err := exec(ctx, tx, `UPDATE users
			SET credits = COALESCE(?, credits),
			    subscription_status = COALESCE(?, subscription_status),
			    updated_at = ?
			WHERE id = ?`,
			credits, sub, t, id); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		return get(ctx, tx, &u, "SELECT "+userColumns+" FROM users WHERE id = ?", id)
	})
	if err != nil {
		return stephub.User{}, fmt.Errorf("update user %q: %w", id, err)
	}
	return u, nil
}
