package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The event write request path
//
// An SDK call builds a middleware stack of some forty steps per request,
// most of them generic (retry bookkeeping, user-agent features, tracing
// and metrics hooks, endpoint rule evaluation): ~45 µs and ~290
// allocations per call on this machine, ~2 µs per ingested record, the
// largest share of the pipeline's budget after the network itself.
// BatchExecuteStatement is the one call on the hot path, so batchSender
// sends it as the SDK would, from the SDK's own parts: its credentials
// provider and cache, its SigV4 signer, its endpoint resolver (resolved once
// per account ID, as the SDK does per call), its HTTP client, and its error
// types, so classify and IsTransient see the same errors. The body is the
// store's own (appendStatement); the response is checked against
// DynamoDB's CRC32 header, as the SDK does. Left out: the SDK's clock-skew
// correction (the signature uses the host clock, so hosts must run NTP) and
// its retries (the pipeline retries). TestSenderSignsLikeSDK holds the
// requests it signs to the SDK's own; every store and ingest test on
// DynamoDB Local writes through it. Every other call goes through the SDK.

// batchSender sends BatchExecuteStatement requests built by the store.
type batchSender struct {
	hc     aws.HTTPClient
	creds  aws.CredentialsProvider
	signer *v4.Signer
	region string
	now    func() time.Time

	resolver     dynamodb.EndpointResolverV2
	params       dynamodb.EndpointParameters
	accountMode  aws.AccountIDEndpointMode
	disableHTTPS bool

	attemptTimeout time.Duration // per send; 0: none (deadline.go)

	mu        sync.Mutex
	endpoints map[string]resolvedEndpoint // by account ID ("" if none)

	// viaSDK, when not nil, is the client whose options the fast path
	// cannot honour: send goes through its stack instead (sdksend.go).
	viaSDK *dynamodb.Client
}

type resolvedEndpoint struct {
	url, signingRegion string
}

func newBatchSender(db *dynamodb.Client) *batchSender {
	o := db.Options()
	hc := o.HTTPClient
	if hc == nil {
		hc = awshttp.NewBuildableClient()
	}
	return &batchSender{
		hc: hc, creds: o.Credentials, signer: v4.NewSigner(), region: o.Region, now: time.Now,
		resolver: o.EndpointResolverV2,
		params: dynamodb.EndpointParameters{
			Region:       aws.String(o.Region),
			Endpoint:     o.BaseEndpoint,
			UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
			UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		},
		accountMode:  o.AccountIDEndpointMode,
		disableHTTPS: o.EndpointOptions.DisableHTTPS,
		endpoints:    map[string]resolvedEndpoint{},
		viaSDK:       viaSDK(db, o),
	}
}

func viaSDK(db *dynamodb.Client, o dynamodb.Options) *dynamodb.Client {
	if ok, _ := fastPathHonours(o); ok {
		return nil
	}
	return db
}

// endpoint returns where requests signed for account go, and the region
// they are signed for (the endpoint's SigV4 option may name another, as the
// rules do for the "local" region).
func (b *batchSender) endpoint(ctx context.Context, account string) (resolvedEndpoint, error) {
	b.mu.Lock()
	re, ok := b.endpoints[account]
	b.mu.Unlock()
	if ok {
		return re, nil
	}
	p := b.params
	p.AccountIdEndpointMode = aws.String(string(b.accountMode))
	if account != "" && b.accountMode != aws.AccountIDEndpointModeDisabled {
		p.AccountId = aws.String(account)
	}
	ep, err := b.resolver.ResolveEndpoint(ctx, p)
	if err != nil {
		return resolvedEndpoint{}, fmt.Errorf("resolve endpoint: %w", err)
	}
	if b.disableHTTPS {
		ep.URI.Scheme = "http"
	}
	if ep.URI.Path == "" {
		ep.URI.Path = "/"
	}
	re = resolvedEndpoint{url: ep.URI.String(), signingRegion: b.region}
	opts, _ := smithyauth.GetAuthOptions(&ep.Properties)
	for _, opt := range opts {
		if opt.SchemeID != "sigv4" && opt.SchemeID != smithyauth.SchemeIDSigV4 {
			continue
		}
		if r, ok := smithyhttp.GetSigV4SigningRegion(&opt.SignerProperties); ok {
			re.signingRegion = r
		}
	}
	b.mu.Lock()
	b.endpoints[account] = re
	b.mu.Unlock()
	return re, nil
}

// statementResult is one entry of a BatchExecuteStatement response.
type statementResult struct {
	Error *struct {
		Code    string
		Message string
	}
}

// send sends one BatchExecuteStatement whose JSON body is body and returns
// the per-statement results and the consumed capacity. Errors are the SDK's
// types (see classify).
func (b *batchSender) send(ctx context.Context, body []byte) (*batchOutput, error) {
	if b.viaSDK != nil {
		return sendViaSDK(ctx, b.viaSDK, body)
	}
	var res *batchOutput
	var err error
	if b.attemptTimeout > 0 {
		res, err = withAttemptDeadline(ctx, b.attemptTimeout, func(ctx context.Context) (*batchOutput, error) { return b.do(ctx, body) })
	} else {
		res, err = b.do(ctx, body)
	}
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "BatchExecuteStatement", Err: err}
	}
	return res, nil
}

func (b *batchSender) do(ctx context.Context, body []byte) (*batchOutput, error) {
	creds, err := b.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	ep, err := b.endpoint(ctx, creds.AccountID)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.BatchExecuteStatement")
	req.Header.Set("Accept-Encoding", "identity") // the CRC32 covers the bytes as sent
	req.Header.Set("User-Agent", userAgent)
	sum := sha256.Sum256(body)
	if err := b.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "dynamodb", ep.signingRegion, b.now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(resp.Body)
	if err == nil {
		err = checkCRC32(resp.Header, payload)
	}
	if err != nil {
		return nil, &smithy.DeserializationError{Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiError(resp, payload)},
			RequestID:     resp.Header.Get("X-Amzn-Requestid"),
		}
	}
	var out batchOutput
	if err := decodeBatchOutput(payload, &out); err != nil {
		return nil, &smithy.DeserializationError{Err: err, Snapshot: payload}
	}
	return &out, nil
}

const userAgent = "postflight aws-sdk-go-v2/batch-sender"

// checkCRC32 checks the body against DynamoDB's X-Amz-Crc32 header, if any.
func checkCRC32(h http.Header, body []byte) error {
	v := h.Get("X-Amz-Crc32")
	if v == "" {
		return nil
	}
	want, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("unreadable X-Amz-Crc32 %q", v)
	}
	if got := crc32.ChecksumIEEE(body); got != uint32(want) {
		return fmt.Errorf("response CRC32 %d, header says %d", got, want)
	}
	return nil
}

// apiError reads an awsJson 1.0 error response as the SDK does: the code
// from X-Amzn-ErrorType or the body's __type (or code), after any '#' and
// before any ':'; the message from message or Message.
func apiError(resp *http.Response, payload []byte) error {
	var body struct {
		Type    string `json:"__type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Msg     string `json:"Message"`
	}
	_ = json.Unmarshal(payload, &body)
	code := resp.Header.Get("X-Amzn-Errortype")
	if code == "" {
		code = body.Type
	}
	if code == "" {
		code = body.Code
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	msg := body.Message
	if msg == "" {
		msg = body.Msg
	}
	if code == "" {
		return &smithy.GenericAPIError{Code: "UnknownError", Message: http.StatusText(resp.StatusCode) + ": " + strings.TrimSpace(string(payload))}
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}
}
