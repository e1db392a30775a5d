package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// stubHTTP is an HTTP client stub (no DynamoDB: these tests compare what
// the SDK and batchSender put on the wire, and how each reads a given
// answer). It records requests and answers with status and body.
type stubHTTP struct {
	reqs   []*http.Request
	bodies [][]byte
	status int
	answer string
	err    error
}

func (s *stubHTTP) Do(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	s.reqs, s.bodies = append(s.reqs, r), append(s.bodies, b)
	if s.err != nil {
		return nil, s.err
	}
	h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}}
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(s.answer))), 10))
	return &http.Response{StatusCode: s.status, Header: h, Body: io.NopCloser(strings.NewReader(s.answer)),
		ContentLength: int64(len(s.answer)), Request: r}, nil
}

func stubClient(hc aws.HTTPClient, endpoint string, creds aws.Credentials, region ...string) *dynamodb.Client {
	o := dynamodb.Options{
		Region:      "eu-west-1",
		Credentials: aws.NewCredentialsCache(credentials.StaticCredentialsProvider{Value: creds}),
		HTTPClient:  hc,
	}
	if endpoint != "" {
		o.BaseEndpoint = aws.String(endpoint)
	}
	if len(region) > 0 {
		o.Region = region[0]
	}
	return dynamodb.New(o)
}

// resign signs a copy of r at its own X-Amz-Date the way the SDK does,
// after dropping the headers in drop.
func resign(t *testing.T, r *http.Request, body []byte, creds aws.Credentials, drop ...string) string {
	t.Helper()
	c := r.Clone(context.Background())
	for _, h := range append(drop, "Authorization") {
		c.Header.Del(h)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	// The signing region is the SDK's: Credential=AKID/date/region/service/aws4_request.
	scope := strings.Split(strings.SplitN(strings.SplitN(r.Header.Get("Authorization"), "Credential=", 2)[1], ",", 2)[0], "/")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), "dynamodb", scope[2], at); err != nil {
		t.Fatal(err)
	}
	return c.Header.Get("Authorization")
}

// TestSenderSignsLikeSDK sends one batch through the SDK and the same body
// through batchSender at the SDK's signing time, and wants the same URL,
// the same protocol headers and the same signature once the SDK's own
// bookkeeping headers (invocation ID, attempt) are left out. First it
// checks that re-signing reproduces the SDK's signature exactly, so the
// comparison is the SDK's signing, not the test's.
func TestSenderSignsLikeSDK(t *testing.T) {
	answer := `{"Responses":[{"TableName":"t"},{"Error":{"Code":"DuplicateItem","Message":"Duplicate primary key exists in table"},"TableName":"t"}],` +
		`"ConsumedCapacity":[{"TableName":"t","CapacityUnits":5,"Table":{"CapacityUnits":3},"GlobalSecondaryIndexes":{"by-date":{"CapacityUnits":2}}}]}`
	for _, tc := range []struct {
		name     string
		endpoint string
		creds    aws.Credentials
	}{
		{"aws endpoint", "", aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}},
		{"account endpoint, session token", "", aws.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", SessionToken: "tok", AccountID: "123456789012"}},
		{"base endpoint", "http://127.0.0.1:8000", aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}},
		{"region local", "", aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &stubHTTP{status: 200, answer: answer}
			region := "eu-west-1"
			if tc.name == "region local" { // the rules send it to localhost:8000, signed for us-east-1
				region = "local"
			}
			db := stubClient(hc, tc.endpoint, tc.creds, region)
			text := `INSERT INTO "t" VALUE {'p':?}`
			sdkOut, err := db.BatchExecuteStatement(context.Background(), &dynamodb.BatchExecuteStatementInput{Statements: []types.BatchStatementRequest{
				{Statement: aws.String(text), Parameters: []types.AttributeValue{str("a")}},
				{Statement: aws.String(text), Parameters: []types.AttributeValue{str("b")}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			sdkReq, body := hc.reqs[0], hc.bodies[0]
			if got := resign(t, sdkReq, body, tc.creds); got != sdkReq.Header.Get("Authorization") {
				t.Fatalf("re-signing does not reproduce the SDK:\n%s\n%s", got, sdkReq.Header.Get("Authorization"))
			}

			b := newBatchSender(db)
			at, _ := time.Parse("20060102T150405Z", sdkReq.Header.Get("X-Amz-Date"))
			b.now = func() time.Time { return at }
			res, err := b.send(context.Background(), body)
			if err != nil {
				t.Fatal(err)
			}
			ours := hc.reqs[1]
			if ours.URL.String() != sdkReq.URL.String() || ours.Method != sdkReq.Method {
				t.Fatalf("%s %s, SDK %s %s", ours.Method, ours.URL, sdkReq.Method, sdkReq.URL)
			}
			for _, h := range []string{"Content-Type", "X-Amz-Target", "Accept-Encoding", "X-Amz-Date", "X-Amz-Security-Token"} {
				if ours.Header.Get(h) != sdkReq.Header.Get(h) {
					t.Errorf("%s: %q, SDK %q", h, ours.Header.Get(h), sdkReq.Header.Get(h))
				}
			}
			if ours.ContentLength != sdkReq.ContentLength || string(hc.bodies[1]) != string(body) {
				t.Fatal("body differs")
			}
			want := resign(t, sdkReq, body, tc.creds, "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request")
			if got := ours.Header.Get("Authorization"); got != want {
				t.Fatalf("signature differs\nours: %s\nSDK:  %s", got, want)
			}
			if rs := res.Responses; len(rs) != 2 || rs[0].Error != nil || rs[1].Error == nil ||
				rs[1].Error.Code != string(sdkOut.Responses[1].Error.Code) || rs[1].Error.Message != *sdkOut.Responses[1].Error.Message {
				t.Fatalf("results %+v, SDK %+v", rs, sdkOut.Responses)
			}
			sc := sdkOut.ConsumedCapacity
			base, index := units(res.ConsumedCapacity)
			if len(sc) != 1 || base != *sc[0].Table.CapacityUnits || index != *sc[0].GlobalSecondaryIndexes["by-date"].CapacityUnits {
				t.Fatalf("write units base %v index %v, SDK read %+v", base, index, sc)
			}
		})
	}
}

// TestSenderErrorsLikeSDK gives the SDK and batchSender the same failed
// answers and wants the pipeline to treat the two errors alike.
func TestSenderErrorsLikeSDK(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		answer    string
		header    string
		sendErr   error
		outcome   string
		transient bool
	}{
		{"throttled", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`, "", nil, "throttled", true},
		{"throttling", 400, `{"__type":"com.amazon.coral.availability#ThrottlingException","message":"rate"}`, "", nil, "throttled", true},
		{"error type header", 400, `{}`, "ThrottlingException:http://internal.amazon.com/coral/", nil, "throttled", true},
		{"internal", 500, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"oops"}`, "", nil, "unavailable", true},
		{"bad gateway", 502, `<html>bad gateway</html>`, "", nil, "unavailable", true},
		{"validation", 400, `{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad"}`, "", nil, "rejected", false},
		{"serialization", 400, `{"__type":"com.amazon.coral.service#SerializationException","Message":"bad"}`, "", nil, "rejected", false},
		{"access denied", 400, `{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"no"}`, "", nil, "misconfigured", false},
		{"no table", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`, "", nil, "misconfigured", false},
		{"bad credentials", 400, `{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}`, "", nil, "misconfigured", false},
		{"unknown client fault", 400, `{"__type":"com.amazon.coral.service#SomethingNewException","message":"?"}`, "", nil, "misconfigured", false},
		{"transaction conflict", 400, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"conflict"}`, "", nil, "throttled", true},
		{"service unavailable", 503, `{"__type":"com.amazonaws.dynamodb.v20120810#ServiceUnavailable","message":"later"}`, "", nil, "unavailable", true},
		{"connection", 0, ``, "", errors.New("connection reset by peer"), "unavailable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &stubHTTP{status: tc.status, answer: tc.answer, err: tc.sendErr}
			hc2 := &stubHTTP{status: tc.status, answer: tc.answer, err: tc.sendErr}
			creds := aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}
			sdk := stubClient(withErrorType(hc, tc.header), "http://127.0.0.1:1", creds)
			_, sdkErr := sdk.BatchExecuteStatement(context.Background(), &dynamodb.BatchExecuteStatementInput{Statements: []types.BatchStatementRequest{
				{Statement: aws.String("x")}}}, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
			_, ourErr := newBatchSender(stubClient(withErrorType(hc2, tc.header), "http://127.0.0.1:1", creds)).send(context.Background(), []byte(`{}`))
			if sdkErr == nil || ourErr == nil {
				t.Fatalf("SDK %v, ours %v", sdkErr, ourErr)
			}
			if got, want := classify(ourErr).String(), classify(sdkErr).String(); got != want || got != tc.outcome {
				t.Errorf("classified %s, SDK's %s, want %s", got, want, tc.outcome)
			}
			if got, want := IsTransient(ourErr), IsTransient(sdkErr); got != want || got != tc.transient {
				t.Errorf("transient %v, SDK's %v, want %v\nours: %v\nSDK:  %v", got, want, tc.transient, ourErr, sdkErr)
			}
		})
	}
}

// withErrorType makes the stub send X-Amzn-ErrorType h (if any).
func withErrorType(s *stubHTTP, h string) aws.HTTPClient {
	if h == "" {
		return s
	}
	return smithyhttp.ClientDoFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := s.Do(r)
		if resp != nil {
			resp.Header.Set("X-Amzn-Errortype", h)
		}
		return resp, err
	})
}

// A response whose CRC32 does not match its header is an error, not data.
func TestSenderChecksCRC32(t *testing.T) {
	hc := &stubHTTP{status: 200, answer: `{"Responses":[]}`}
	b := newBatchSender(stubClient(smithyhttp.ClientDoFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := hc.Do(r)
		resp.Header.Set("X-Amz-Crc32", "1")
		return resp, err
	}), "http://127.0.0.1:1", aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}))
	if _, err := b.send(context.Background(), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "CRC32") {
		t.Fatalf("err = %v", err)
	}
}
