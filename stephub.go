// Package stephub holds the domain of the service: users, videos, the events
// that report a video's progress, and the errors the rest of the code speaks.
// It imports nothing of the project's own; every other package builds on it.
package stephub

import (
	"encoding/json"
	"strconv"
	"time"
)

// TotalSteps is the number of working steps of every job; the terminal event
// of a completed job carries step TotalSteps+1.
const TotalSteps = 8

// GenerateCost is what one generate takes from a user's credits.
const GenerateCost = 100

// MaxCredits bounds every balance: no user is given more, by the admin API
// or as a new user's credits, and a refund takes no balance past it. Far
// below 2^63, it keeps every sum of credits clear of the databases' 64-bit
// integers.
const MaxCredits int64 = 1_000_000_000_000

// MockVideoURL is the video_url of every job the mock pipeline completes,
// where the server serves its sample video.
const MockVideoURL = "/uploads/videos/mock-video.mp4"

// Status is a video's state. Pending and Processing are live; the others are
// final and never change again.
type Status string

// The states a video moves through.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Terminal reports whether s is a final state.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// SubscriptionStatus tells whether a user may generate.
type SubscriptionStatus string

// The subscription states of a user.
const (
	SubscriptionActive   SubscriptionStatus = "active"
	SubscriptionInactive SubscriptionStatus = "inactive"
)

// Valid reports whether s is one of the known subscription states.
func (s SubscriptionStatus) Valid() bool {
	return s == SubscriptionActive || s == SubscriptionInactive
}

// User is an account, identified by the subject of its tokens.
type User struct {
	ID                 string             `json:"id" db:"id"`
	Email              string             `json:"email" db:"email"`
	Credits            int64              `json:"credits" db:"credits"`
	SubscriptionStatus SubscriptionStatus `json:"subscription_status" db:"subscription_status"`
}

// Video is one generation job and its current state.
type Video struct {
	ID                int64     `json:"id" db:"id"`
	UserID            string    `json:"-" db:"user_id"`
	Status            Status    `json:"status" db:"status"`
	Prompt            string    `json:"prompt" db:"prompt"`
	Model             string    `json:"model" db:"model"`
	ReferenceImageURL *string   `json:"reference_image_url" db:"reference_image_url"`
	Step              int       `json:"step" db:"step"`
	Progress          int       `json:"progress" db:"progress"`
	VideoURL          *string   `json:"video_url" db:"video_url"`
	Error             *string   `json:"error" db:"error"`
	CreatedAt         time.Time `json:"created_at" db:"created_at"`
	UpdatedAt         time.Time `json:"updated_at" db:"updated_at"`
	// LastSeq is the sequence number of the video's newest event (0: none yet).
	LastSeq int64 `json:"-" db:"last_seq"`
	// StepStartedAt is when the current step's first event was stored.
	StepStartedAt *time.Time `json:"-" db:"step_started_at"`
	// Attempts counts the claims of the video by workers.
	Attempts int `json:"-" db:"attempts"`
	// LeaseExpiresAt is when the worker running the video loses it unless
	// it posts again; nil when nobody runs it.
	LeaseExpiresAt *time.Time `json:"-" db:"lease_expires_at"`
	// LeaseTokenHash is the SHA-256, in hex, of the token of the lease the
	// video is under; nil when nobody runs it.
	LeaseTokenHash *string `json:"-" db:"lease_token_hash"`
	// LeaseFenced tells that the lease takes posts only with its token: from
	// its claim for the built-in pipeline, from the first post that carries
	// the token for a worker.
	LeaseFenced bool `json:"-" db:"lease_fenced"`
	// Cost is the credits taken at creation, given back if the job fails or
	// is cancelled.
	Cost int64 `json:"-" db:"cost"`
	// EventsDeletedAt is when retention deleted the video's events; nil
	// while they are kept.
	EventsDeletedAt *time.Time `json:"-" db:"events_deleted_at"`
}

// MarshalJSON adds the fields clients see that are not stored: total_steps
// and stream_url.
func (v Video) MarshalJSON() ([]byte, error) {
	type stored Video // without this method, so Marshal does not recurse
	return json.Marshal(struct {
		stored
		TotalSteps int    `json:"total_steps"`
		StreamURL  string `json:"stream_url"`
	}{stored(v), TotalSteps, "/api/v1/videos/" + strconv.FormatInt(v.ID, 10) + "/stream"})
}

// Event is one step report of a video, as clients receive it. ID is the
// per-video sequence number: 1, 2, 3… with no gaps.
type Event struct {
	ID         int64           `json:"id"`
	Step       int             `json:"step"`
	TotalSteps int             `json:"total_steps"`
	Message    string          `json:"message"`
	Progress   int             `json:"progress"`
	Status     Status          `json:"status"`
	ETASeconds *float64        `json:"eta_seconds,omitempty"`
	At         time.Time       `json:"at"`
	VideoURL   *string         `json:"video_url,omitempty"`
	Error      *string         `json:"error,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// Step is what a pipeline reports: the next event of a video before storage
// gives it a sequence number and a time.
type Step struct {
	Step     int
	Message  string
	Progress int
	// Status is StatusProcessing, or a terminal status for the last event.
	Status     Status
	ETASeconds *float64
	VideoURL   *string
	Error      *string
	Data       json.RawMessage
	// IdempotencyKey, when set, makes a repeated post of the same step
	// return the first one's sequence number instead of storing it again.
	IdempotencyKey string
	// LeaseToken is the token of the lease its poster holds on the video,
	// or empty from a poster that sends none.
	LeaseToken string
}
