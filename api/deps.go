package api

import (
	"context"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/storage"
)

// Users are the accounts the API creates on first sight, shows and updates.
type Users interface {
	// EnsureUser creates the user with credits unless they exist.
	EnsureUser(ctx context.Context, id, email string, credits int64) (stephub.User, error)
	// User returns the user, or stephub.ErrNotFound.
	User(ctx context.Context, id string) (stephub.User, error)
	// UpdateUser sets the credits, the subscription or both, creating the
	// user with newUserCredits first if need be.
	UpdateUser(ctx context.Context, id string, credits *int64, sub *stephub.SubscriptionStatus, newUserCredits int64) (stephub.User, error)
}

// Videos are what the API reads of videos without running them: a user's
// own, and whether a worker's post to one would be taken.
type Videos interface {
	// UserVideo returns the user's video, or stephub.ErrNotFound for one
	// that is not theirs.
	UserVideo(ctx context.Context, userID string, id int64) (stephub.Video, error)
	// ListVideos returns up to limit of the user's videos, newest first,
	// with ids below before (0: from the newest).
	ListVideos(ctx context.Context, userID string, before int64, limit int) ([]stephub.Video, error)
	// CheckPost returns why a runner's post with this idempotency key and
	// lease token would be refused by the video as it is now, or nil.
	CheckPost(ctx context.Context, videoID int64, idempotencyKey, leaseToken string) error
	// ForecastPost is CheckPost before the post's body is read: it may
	// answer from a copy of the video that is out of date.
	ForecastPost(ctx context.Context, videoID int64, idempotencyKey, leaseToken string) error
}

// Database is the health of what the API's data lives in: /readyz asks it,
// and so does an error that might come from a database that is down.
type Database interface {
	Ping(ctx context.Context) error
}

// Jobs start, stop and run videos, storing and publishing their events.
type Jobs interface {
	// Generate creates a video for the user, paid from their credits, and
	// queues its job.
	Generate(ctx context.Context, userID, prompt, model string, referenceImageURL *string) (stephub.Video, error)
	// Cancel stops the user's video and gives the credits back.
	Cancel(ctx context.Context, userID string, videoID int64) (stephub.Video, error)
	// Post stores a worker's step of the video and publishes it; it
	// returns the stored event and the token of the lease the post took
	// if it claimed a pending video (empty otherwise).
	Post(ctx context.Context, videoID int64, step stephub.Step) (ev stephub.Event, leaseToken string, err error)
	// Claim leases the oldest pending video to a worker, waiting up to
	// wait for one; stephub.ErrNotFound when none came.
	Claim(ctx context.Context, wait time.Duration) (storage.Lease, error)
	// Unclaim gives back a lease whose worker never heard of it.
	Unclaim(l storage.Lease)
	// RunsEveryVideo reports whether the built-in pipeline runs every
	// video, so that no worker may.
	RunsEveryVideo() bool
}
