package store

import (
	"bytes"
	"context"
	"fmt"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	smithymetrics "github.com/aws/smithy-go/metrics"
	"github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/tracing"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The event write through the SDK's own stack
//
// batchSender (sender.go) is the fast path: it rebuilds what the SDK does
// for this one call from the client's parts, and so cannot honour what a
// caller may have added to the client: APIOptions, interceptors, a v1
// endpoint resolver, a custom HTTPSignerV4, request/response logging, a
// meter or tracer provider. fastPathHonours says whether the client has none
// of those; when it has any, the store sends the same pre-built body through
// the client's BatchExecuteStatement instead, so that every option applies:
// a serialize-step middleware hands the SDK the bytes in place of the
// (empty) input it would serialize. Measured on the ingest benchmark, that
// costs 3.5–10 CPU-µs per record more than the fast path (median 5; README,
// "Measured"), far over the 1 µs the issue allowed for sending everything
// through the SDK, so the fast path stays the default. Clock-skew
// correction is the one thing the fast path leaves out even then (hosts
// must keep NTP time; README).

// fastPathHonours reports whether the fast path does everything the SDK
// would do with o: none of the options it cannot honour is set.
func fastPathHonours(o dynamodb.Options) (bool, string) {
	switch {
	case len(o.APIOptions) > 0:
		return false, "APIOptions"
	case !interceptorsEmpty(o.Interceptors):
		return false, "interceptors"
	case o.EndpointResolver != nil: //nolint:staticcheck // deprecated, but a client may still set it
		return false, "a v1 endpoint resolver"
	case o.ClientLogMode != 0:
		return false, "ClientLogMode"
	}
	if _, ok := o.HTTPSignerV4.(*v4.Signer); o.HTTPSignerV4 != nil && !ok {
		return false, "a custom HTTPSignerV4"
	}
	switch o.MeterProvider.(type) {
	case nil, smithymetrics.NopMeterProvider, *smithymetrics.NopMeterProvider:
	default:
		return false, "a meter provider"
	}
	switch o.TracerProvider.(type) {
	case nil, tracing.NopTracerProvider, *tracing.NopTracerProvider:
	default:
		return false, "a tracer provider"
	}
	switch o.Logger.(type) {
	case nil, logging.Nop, *logging.StandardLogger:
		// Without ClientLogMode the SDK logs nothing of a successful call.
	default:
		return false, "a logger"
	}
	return true, ""
}

func interceptorsEmpty(r smithyhttp.InterceptorRegistry) bool {
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() > 0 {
			return false
		}
	}
	return true
}

// sendViaSDK sends a pre-built BatchExecuteStatement body through db's own
// middleware stack. The pipeline retries itself, so the SDK does not.
func sendViaSDK(ctx context.Context, db *dynamodb.Client, body []byte) (*batchOutput, error) {
	out, err := db.BatchExecuteStatement(ctx, &dynamodb.BatchExecuteStatementInput{}, func(o *dynamodb.Options) {
		o.Retryer = aws.NopRetryer{}
		o.APIOptions = append(o.APIOptions, prebuiltBody(body))
	})
	if err != nil {
		return nil, err
	}
	res := &batchOutput{Responses: make([]statementResult, len(out.Responses))}
	for i, r := range out.Responses {
		if r.Error != nil {
			res.Responses[i].Error = &struct {
				Code    string
				Message string
			}{Code: string(r.Error.Code), Message: aws.ToString(r.Error.Message)}
		}
	}
	for _, c := range out.ConsumedCapacity {
		cc := consumedCapacity{CapacityUnits: aws.ToFloat64(c.CapacityUnits)}
		if c.Table != nil {
			cc.Table = &capacityUnits{CapacityUnits: aws.ToFloat64(c.Table.CapacityUnits)}
		}
		if len(c.GlobalSecondaryIndexes) > 0 {
			cc.GlobalSecondaryIndexes = make(map[string]capacityUnits, len(c.GlobalSecondaryIndexes))
			for name, u := range c.GlobalSecondaryIndexes {
				cc.GlobalSecondaryIndexes[name] = capacityUnits{CapacityUnits: aws.ToFloat64(u.CapacityUnits)}
			}
		}
		res.ConsumedCapacity = append(res.ConsumedCapacity, cc)
	}
	return res, nil
}

// prebuiltBody replaces the serialized request body with body. The input is
// empty, so the SDK's input validation (which would reject it) is removed.
func prebuiltBody(body []byte) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		if _, err := st.Initialize.Remove("OperationInputValidation"); err != nil {
			return fmt.Errorf("prebuilt body: %w", err)
		}
		return st.Serialize.Insert(middleware.SerializeMiddlewareFunc("PostflightPrebuiltBody",
			func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
				req, ok := in.Request.(*smithyhttp.Request)
				if !ok {
					return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("prebuilt body: request is %T", in.Request)
				}
				r, err := req.SetStream(bytes.NewReader(body))
				if err != nil {
					return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("prebuilt body: %w", err)
				}
				in.Request = r
				return next.HandleSerialize(ctx, in)
			}), "OperationSerializer", middleware.After)
	}
}
