// Package reqbody lets the code that writes a request body tell the HTTP
// client about it through the request's context: the store writes the
// bytes of a DynamoDB batch, the AWS SDK wraps them in readers of its own,
// and awsconf's client, finding the same bytes here, hands them to net/http
// as they are instead of copying them out of the SDK's reader.
package reqbody

import "context"

type key struct{}

// With returns ctx carrying b as the body of the requests sent under it.
// The caller must not change b until those requests are done.
func With(ctx context.Context, b []byte) context.Context {
	return context.WithValue(ctx, key{}, b)
}

// From returns the body With put in ctx.
func From(ctx context.Context) ([]byte, bool) {
	b, ok := ctx.Value(key{}).([]byte)
	return b, ok
}
