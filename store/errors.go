package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postflight/postflight"
)

// ErrConflict means concurrent changes kept winning; the caller may retry.
var ErrConflict = postflight.ErrConflict

// classify maps a request-level error to the outcome of every item in it.
func classify(err error) postflight.WriteOutcome {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
			"LimitExceededException", "Throttling", "TooManyRequestsException":
			return postflight.Throttled
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 429 {
		return postflight.Throttled
	}
	return postflight.Unavailable
}

// statementOutcome maps a per-statement error of BatchExecuteStatement.
func statementOutcome(code types.BatchStatementErrorCodeEnum) postflight.WriteOutcome {
	switch code {
	case types.BatchStatementErrorCodeEnumProvisionedThroughputExceeded,
		types.BatchStatementErrorCodeEnumThrottlingError,
		types.BatchStatementErrorCodeEnumRequestLimitExceeded:
		return postflight.Throttled
	case types.BatchStatementErrorCodeEnumValidationError,
		types.BatchStatementErrorCodeEnumItemCollectionSizeLimitExceeded:
		return postflight.Rejected
	}
	// InternalServerError, TransactionConflict, ResourceNotFound, AccessDenied.
	return postflight.Unavailable
}

// IsTransient reports whether err is worth retrying: throttling, 5xx and
// network errors, but not context cancellation or a client-side mistake.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() ||
		classify(err) == postflight.Throttled
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
