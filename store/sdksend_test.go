package store

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The fast path is kept only for clients whose options it honours; any
// option it would drop sends the event writes through the SDK's own stack.
func TestFastPathOnlyWhenItHonoursTheClient(t *testing.T) {
	base := dynamodb.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		BaseEndpoint: aws.String("http://127.0.0.1:1")}
	noop := func(*middleware.Stack) error { return nil }
	for _, c := range []struct {
		name string
		set  func(*dynamodb.Options)
		fast bool
	}{
		{"plain", func(*dynamodb.Options) {}, true},
		{"standard logger, no log mode", func(o *dynamodb.Options) { o.Logger = logging.NewStandardLogger(nil) }, true},
		{"APIOptions", func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, noop) }, false},
		{"interceptor", func(o *dynamodb.Options) {
			o.Interceptors.AddBeforeTransmit(beforeTransmit(func(context.Context, *smithyhttp.InterceptorContext) error { return nil }))
		}, false},
		{"log mode", func(o *dynamodb.Options) { o.ClientLogMode = aws.LogRequest }, false},
		{"custom signer", func(o *dynamodb.Options) { o.HTTPSignerV4 = customSigner{} }, false},
		{"v1 resolver", func(o *dynamodb.Options) {
			o.EndpointResolver = dynamodb.EndpointResolverFromURL("http://127.0.0.1:1") //nolint:staticcheck // the deprecated option under test
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := dynamodb.New(base, c.set)
			b := newBatchSender(db)
			if fast := b.viaSDK == nil; fast != c.fast {
				_, why := fastPathHonours(db.Options())
				t.Fatalf("fast path %v, want %v (%s)", fast, c.fast, why)
			}
		})
	}
}

type beforeTransmit func(context.Context, *smithyhttp.InterceptorContext) error

func (f beforeTransmit) BeforeTransmit(ctx context.Context, in *smithyhttp.InterceptorContext) error {
	return f(ctx, in)
}

type customSigner struct{}

func (customSigner) SignHTTP(context.Context, aws.Credentials, *http.Request, string, string, string, time.Time, ...func(*v4.SignerOptions)) error {
	return nil
}

// The store's own attempt-deadline middleware is not an option of the
// caller's: a store built on a plain client (serve's) keeps the fast path,
// and one built on a client with an option of its own sends through that
// client's stack with the store's deadline too. Before, New wrapped the
// client first and every event write took the SDK path.
func TestStoreKeepsTheFastPathForAPlainClient(t *testing.T) {
	base := dynamodb.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		BaseEndpoint: aws.String("http://127.0.0.1:1")}
	s, err := New(dynamodb.New(base), Config{Table: "t"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.batch.viaSDK != nil {
		t.Fatal("a store on a plain client sends event writes through the SDK")
	}
	noop := func(*middleware.Stack) error { return nil }
	s, err = New(dynamodb.New(base, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, noop) }), Config{Table: "t"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.batch.viaSDK == nil || s.batch.viaSDK != s.db {
		t.Fatal("a store on a client with APIOptions does not send through that client, deadline included")
	}
}
