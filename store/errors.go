package store

import (
	"context"
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postflight/postflight"
)

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
	var ate *AttemptTimeoutError
	if errors.As(err, &ate) {
		return true
	}
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
