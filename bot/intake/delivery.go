// Package intake is compatbot's durable webhook intake: every verified
// delivery is written to the embedded database before GitHub is answered,
// and processed from there by a bounded worker pool, serialised per Key,
// with retries, backoff and a dead-letter state. A kill -9 at any moment
// loses no acknowledged delivery.
package intake

import (
	"context"
	"errors"
	"time"
)

// Delivery is one webhook delivery as stored in the database.
type Delivery struct {
	// ID is the X-GitHub-Delivery header: the unit of deduplication.
	ID string
	// Event is the X-GitHub-Event header (pull_request, issue_comment, ...).
	Event string
	// Action is the payload's "action" field, empty when it has none.
	Action string
	// Payload is the raw JSON body (for form-encoded deliveries, the decoded
	// payload= value).
	Payload []byte
	// Key serialises processing: "owner/repo#N" for PR-scoped events,
	// "owner/repo" otherwise. Two deliveries with the same Key are never
	// processed at the same time, and run in order of receipt.
	Key string
	// Installation is the GitHub App installation id from the payload, 0
	// when the payload has none.
	Installation int64
	// Attempt counts from 1 for the first processing attempt.
	Attempt int
	// ReceivedAt is when the intake persisted the delivery.
	ReceivedAt time.Time
}

// Processor handles deliveries pulled from the database.
//
// Processors must be idempotent: a delivery whose processing was cut short
// by a crash (kill -9, power loss) after it started but before its outcome
// was recorded is processed again on restart. A returned error is retried
// with exponential backoff up to the configured number of attempts, then
// dead-lettered; wrap it with Permanent to dead-letter at once. A nil error
// marks the delivery done. ctx is cancelled on shutdown; a processor
// returning because of that is released back to the queue, not counted as
// a failure.
type Processor interface {
	Process(ctx context.Context, d *Delivery) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, d *Delivery) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, d *Delivery) error { return f(ctx, d) }

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: the delivery is dead-lettered
// at once (a maintainer can still retry it with `compatbot deliveries
// retry`). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
