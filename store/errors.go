package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postflight/postflight"
)

// One classification of DynamoDB failures, by fault
//
// classify is the only place a DynamoDB error becomes an outcome; execute,
// resolve, the request metrics and IsTransient all go through it.
//
//   - Throttled: DynamoDB asked us to slow down (throttling codes, 429,
//     per-statement throttling, transaction conflicts). Retried with
//     backoff; halves the write concurrency; not a breaker failure.
//   - Unavailable: a server-side fault (5xx, InternalServerError, network
//     errors, an attempt timeout, a garbled answer). Retried with backoff;
//     the only outcome the breaker counts.
//   - Rejected: the request was malformed because of an item (a bad value,
//     an item over 400 KB after encoding, an expression limit:
//     ValidationException, SerializationException). A batch is split until
//     the offending statement is alone (execute); that message is
//     dead-lettered with DynamoDB's message.
//   - Misconfigured: DynamoDB refuses this process (access denied, table
//     missing, credentials refused) or answers a 4xx we do not know: no item
//     is to blame, so nothing is dead-lettered; ingest pauses and says so.

var (
	throttleCodes = map[string]bool{
		"ProvisionedThroughputExceededException": true, "ThrottlingException": true, "RequestLimitExceeded": true,
		"LimitExceededException": true, "Throttling": true, "TooManyRequestsException": true,
		"TransactionConflictException": true,
	}
	clientFaultCodes = map[string]bool{
		"ValidationException": true, "SerializationException": true, "ItemCollectionSizeLimitExceededException": true,
	}
)

// ErrConflict means concurrent changes kept winning; the caller may retry.
var ErrConflict = postflight.ErrConflict

// classify maps a request-level error to the outcome of every item in it.
func classify(err error) postflight.WriteOutcome {
	var ate *AttemptTimeoutError
	if errors.As(err, &ate) {
		return postflight.Unavailable
	}
	var re *smithyhttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch {
		case throttleCodes[code] || status == http.StatusTooManyRequests:
			return postflight.Throttled
		case clientFaultCodes[code] || status == http.StatusRequestEntityTooLarge:
			return postflight.Rejected
		case status >= 500 || apiErr.ErrorFault() == smithy.FaultServer:
			return postflight.Unavailable
		case status >= 400 || apiErr.ErrorFault() == smithy.FaultClient:
			// AccessDeniedException, ResourceNotFoundException,
			// UnrecognizedClientException, signature and token errors,
			// and client faults we do not know.
			return postflight.Misconfigured
		}
		return postflight.Unavailable
	}
	switch {
	case status == http.StatusTooManyRequests:
		return postflight.Throttled
	case status >= 400 && status < 500:
		return postflight.Misconfigured
	}
	return postflight.Unavailable
}

// statementOutcome maps a per-statement error of BatchExecuteStatement.
func statementOutcome(code types.BatchStatementErrorCodeEnum) postflight.WriteOutcome {
	switch code {
	case types.BatchStatementErrorCodeEnumProvisionedThroughputExceeded,
		types.BatchStatementErrorCodeEnumThrottlingError,
		types.BatchStatementErrorCodeEnumRequestLimitExceeded,
		types.BatchStatementErrorCodeEnumTransactionConflict:
		return postflight.Throttled
	case types.BatchStatementErrorCodeEnumValidationError,
		types.BatchStatementErrorCodeEnumItemCollectionSizeLimitExceeded:
		return postflight.Rejected
	case types.BatchStatementErrorCodeEnumAccessDenied,
		types.BatchStatementErrorCodeEnumResourceNotFound:
		return postflight.Misconfigured
	}
	// InternalServerError and codes we do not know.
	return postflight.Unavailable
}

// IsTransient reports whether err is worth retrying as it is: throttling,
// server faults, network errors and attempt timeouts, but not the caller's
// own cancellation, a malformed request or a refusal of this process.
func IsTransient(err error) bool {
	var ate *AttemptTimeoutError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ate):
		return true
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return false
	}
	// Only what DynamoDB or the network said: any other error (a bug, an
	// unreadable stored item) is not made better by retrying.
	var apiErr smithy.APIError
	var ne net.Error
	var rse *smithyhttp.RequestSendError
	var de *smithy.DeserializationError
	var re *smithyhttp.ResponseError
	if !errors.As(err, &apiErr) && !errors.As(err, &ne) && !errors.As(err, &rse) && !errors.As(err, &de) && !errors.As(err, &re) {
		return false
	}
	o := classify(err)
	return o == postflight.Throttled || o == postflight.Unavailable
}

// wrapErr adds context to a request error and, when it is transient, makes
// it match postflight.ErrUnavailable, so callers that only know the domain
// (the API) can tell a retryable failure from a broken one.
func wrapErr(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	if IsTransient(err) {
		return transientError{err}
	}
	return err
}

type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

func (e transientError) Is(target error) bool { return target == postflight.ErrUnavailable }
