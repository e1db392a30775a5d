package awsconf

import (
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight/internal/telemetry"
)

// WithTracing returns a client like db whose every HTTP request to DynamoDB
// made inside a trace gets a client span "DynamoDB.<operation>": SDK calls
// and the store's hand-sent write batches alike, one span per request sent
// (retries included), carrying the links of telemetry.WithLinks. Requests
// made outside a trace start no span, so untraced traffic costs one context
// lookup. A nil or no-op tp returns db.
func WithTracing(db *dynamodb.Client, tp trace.TracerProvider) *dynamodb.Client {
	if tp == nil {
		return db
	}
	tracer := tp.Tracer("github.com/postflight/postflight/internal/awsconf")
	return dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.HTTPClient = tracedHTTP{next: o.HTTPClient, tracer: tracer}
	})
}

type tracedHTTP struct {
	next   aws.HTTPClient
	tracer trace.Tracer
}

func (c tracedHTTP) Do(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		return c.next.Do(r)
	}
	op := r.Header.Get("X-Amz-Target") // DynamoDB_20120810.BatchExecuteStatement
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	ctx, sp := c.tracer.Start(r.Context(), "DynamoDB."+op,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(telemetry.Links(r.Context())...),
		trace.WithAttributes(
			attribute.String("rpc.system", "aws-api"), attribute.String("rpc.service", "DynamoDB"),
			attribute.String("rpc.method", op), attribute.String("server.address", r.URL.Host)))
	defer sp.End()
	resp, err := c.next.Do(r.WithContext(ctx))
	switch {
	case err != nil:
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	case resp.StatusCode >= 400:
		sp.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		sp.SetStatus(codes.Error, resp.Status)
	default:
		sp.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	return resp, err
}
