// Package awsconf builds the DynamoDB client both commands use: the AWS
// SDK's default chain, an optional endpoint override, and dummy credentials
// for DynamoDB Local on loopback.
package awsconf

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// MaxIdleConns is the pool of idle connections kept to DynamoDB: above the
// ingest pipeline's write concurrency plus the API's list fan-out.
const MaxIdleConns = 256

// DefaultResponseHeaderTimeout is the transport's ResponseHeaderTimeout when
// the caller gives none: the store's default attempt timeout.
const DefaultResponseHeaderTimeout = 5 * time.Second

// WriteBufferSize is each connection's write buffer.
const WriteBufferSize = 64 << 10

// DynamoClient builds a DynamoDB client from the SDK's default chain
// (AWS_REGION, credentials, profiles, web identity). An explicit endpoint overrides the resolution; for a loopback one
// (DynamoDB Local) without a region or access key in the environment, a
// dummy region and static credentials are filled in. responseHeaderTimeout
// (0: DefaultResponseHeaderTimeout) bounds the wait for an answer's headers
// on every request, so a connection that accepts and never answers fails.
func DynamoClient(ctx context.Context, endpoint string, getenv func(string) string, responseHeaderTimeout time.Duration) (*dynamodb.Client, error) {
	if responseHeaderTimeout <= 0 {
		responseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	var opts []func(*config.LoadOptions) error
	if isLoopback(endpoint) {
		if getenv("AWS_REGION") == "" && getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, config.WithRegion("us-east-1"))
		}
		if getenv("AWS_ACCESS_KEY_ID") == "" {
			opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	// Ingest keeps up to --max-concurrency requests in flight and lists fan
	// out; with the SDK's default of 10 idle connections per host, every
	// burst above 10 would close connections and dial new ones.
	opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = MaxIdleConns
		tr.MaxIdleConnsPerHost = MaxIdleConns
		// A 25-statement batch is typically 10–30 KB. With net/http's 4 KB
		// default the headers and the body go out in separate write
		// syscalls; with WriteBufferSize most requests leave in one.
		tr.WriteBufferSize = WriteBufferSize
		tr.ResponseHeaderTimeout = responseHeaderTimeout
	})))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("aws config: no region: set AWS_REGION")
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.HTTPClient = inMemoryBody{o.HTTPClient}
	}), nil
}

func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// maxInMemoryBody is the largest request body inMemoryBody copies: above
// DynamoDB's largest requests (a 25-item batch of 400 KB items is 10 MB
// plus encoding), so in practice every request.
const maxInMemoryBody = 16 << 20

// inMemoryBody hands net/http request bodies it recognizes as in memory.
// The SDK wraps every body in its own reader, so net/http, not knowing the
// body is ready, flushes the headers in a write of their own and copies
// the body through a generic path: two write syscalls and a copy loop per
// request. Copying the body into a bytes.Reader lets headers and body
// leave in one write, and gives net/http a GetBody, so it may resend a
// request whose idle connection turned out to be closed. Requests that
// already have a GetBody (the store's batch writes) go as they are.
type inMemoryBody struct{ next aws.HTTPClient }

func (c inMemoryBody) Do(r *http.Request) (*http.Response, error) {
	if r.GetBody == nil && r.Body != nil && r.Body != http.NoBody && r.ContentLength > 0 && r.ContentLength <= maxInMemoryBody {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return c.next.Do(r)
}
