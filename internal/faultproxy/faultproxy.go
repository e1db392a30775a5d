// Package faultproxy is a reverse proxy in front of a real DynamoDB endpoint
// (DynamoDB Local in tests) that injects faults on command: DynamoDB's own
// throttling errors (HTTP 400 with ThrottlingException or
// ProvisionedThroughputExceededException in its JSON error format), 500 and
// 503 answers, dropped connections, connections that never answer, and added
// latency. Everything it does not
// fault it forwards unchanged, so the client under test talks to the real
// thing in between faults.
//
// It is test infrastructure, not a DynamoDB emulator: the requests it answers
// itself never reach DynamoDB, which is what a throttled or failed request
// means.
package faultproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what the proxy does with a request.
type Kind int

const (
	// Forward passes the request to DynamoDB (after any latency).
	Forward Kind = iota
	// Throttle answers 400 ThrottlingException.
	Throttle
	// ProvisionedThroughput answers 400 ProvisionedThroughputExceededException.
	ProvisionedThroughput
	// InternalError answers 500 InternalServerError.
	InternalError
	// Unavailable answers 503 ServiceUnavailable.
	Unavailable
	// Drop closes the client's connection without answering.
	Drop
	// LoseAnswer forwards the request to DynamoDB, so it takes effect, then
	// withholds the answer until the client gives up and closes its
	// connection: the client cannot tell whether its write happened.
	LoseAnswer
	// Hang reads the request and never answers: the connection stays open
	// until the client gives up (or the proxy closes).
	Hang
	// Validation answers 400 ValidationException, as DynamoDB does for a
	// request it finds malformed (a bad value, an item over 400 KB).
	Validation
	// AccessDenied answers 400 AccessDeniedException.
	AccessDenied
	// StatementThrottle and StatementInternalError fault single statements
	// of a BatchExecuteStatement: the statements whose JSON contains
	// Fault.Match are taken out of the request, the rest is forwarded, and
	// the answer (200) carries ThrottlingError or InternalServerError at the
	// faulted statements' places. Count counts requests faulted.
	StatementThrottle
	StatementInternalError
	numKinds
)

var kindNames = [numKinds]string{"forward", "throttle", "provisioned_throughput", "internal_error", "unavailable", "drop", "lose_answer",
	"hang", "validation", "access_denied", "statement_throttle", "statement_internal_error"}

func (k Kind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// errorAnswer is a DynamoDB error response: status and the JSON 1.0 error
// body (__type names the shape, as DynamoDB sends it).
type errorAnswer struct {
	status  int
	typ     string
	message string
}

var answers = map[Kind]errorAnswer{
	Throttle: {http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ThrottlingException",
		"Rate of requests exceeds the allowed throughput."},
	ProvisionedThroughput: {http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
		"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."},
	InternalError: {http.StatusInternalServerError, "com.amazonaws.dynamodb.v20120810#InternalServerError",
		"Internal server error"},
	Unavailable: {http.StatusServiceUnavailable, "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
		"Service unavailable"},
	Validation: {http.StatusBadRequest, "com.amazon.coral.validate#ValidationException",
		"Item size has exceeded the maximum allowed size (faultproxy)"},
	AccessDenied: {http.StatusBadRequest, "com.amazon.coral.service#AccessDeniedException",
		"User: arn:aws:iam::000000000000:user/faultproxy is not authorized to perform: dynamodb:PartiQLInsert"},
}

// statementErrors are the per-statement errors of the Statement kinds.
var statementErrors = map[Kind][2]string{
	StatementThrottle:      {"ThrottlingError", "Throughput exceeds the current capacity of your table or index (faultproxy)"},
	StatementInternalError: {"InternalServerError", "Internal server error (faultproxy)"},
}

// Fault is one fault rule. The proxy holds at most one at a time.
type Fault struct {
	Kind Kind
	// Count, if positive, is how many requests the fault answers before it
	// ends by itself.
	Count int
	// For, if positive, is how long the fault lasts from Inject.
	For time.Duration
	// Ops, if set, restricts the fault to these operations (the part of
	// X-Amz-Target after the dot, e.g. "BatchExecuteStatement"); other
	// requests are forwarded.
	Ops []string
	// Match, if set, restricts the fault to requests whose body contains it
	// (e.g. one message SID); the Statement kinds need it.
	Match []byte
	// Share, if in (0,1), is the fraction of the requests it applies to
	// that the fault answers, drawn at random (a partial throttle); the rest
	// are forwarded. Count counts only the answered ones.
	Share float64
}

// Counts are the proxy's counters since it started.
type Counts struct {
	Requests  int64            // every request received
	Forwarded int64            // passed to DynamoDB
	Faulted   map[Kind]int64   // answered by a fault (Drop included)
	ByOp      map[string]int64 // requests received, by operation
}

// Proxy is a fault-injecting reverse proxy listening on 127.0.0.1. Its
// methods are safe for concurrent use.
type Proxy struct {
	url    string
	srv    *http.Server
	ln     net.Listener
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	served chan struct{}

	mu      sync.Mutex
	fault   *Fault    // nil: forward everything
	left    int       // requests the fault still answers, if Count > 0
	until   time.Time // end of the fault, if For > 0
	latency time.Duration
	spread  func() time.Duration // if not nil, draws each forwarded request's latency

	requests  atomic.Int64
	forwarded atomic.Int64
	faulted   [numKinds]atomic.Int64
	opsMu     sync.Mutex
	byOp      map[string]int64
}

// Start starts a proxy to target (e.g. "http://127.0.0.1:8000") on a free
// port of 127.0.0.1.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: bad target %q", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	p := &Proxy{url: "http://" + ln.Addr().String(), ln: ln, tr: tr, served: make(chan struct{}), byOp: map[string]int64{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: tr,
		// DynamoDB down behind us: answer like a load balancer would.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// URL is the endpoint to give a DynamoDB client instead of the target.
func (p *Proxy) URL() string { return p.url }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.served
	p.tr.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Inject makes f the active fault, replacing any other.
func (p *Proxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = &f
	p.left = f.Count
	p.until = time.Time{}
	if f.For > 0 {
		p.until = time.Now().Add(f.For)
	}
}

// Heal ends the active fault: every request is forwarded again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.fault = nil
	p.mu.Unlock()
}

// Active reports whether a fault is still in force (it may end by itself
// after Count requests or For).
func (p *Proxy) Active() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(time.Now())
	return p.fault != nil
}

// SetLatency delays every forwarded request by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency, p.spread = d, nil
	p.mu.Unlock()
}

// SetLatencyDist delays each forwarded request by a draw of f (nil: none),
// e.g. LogNormal.
func (p *Proxy) SetLatencyDist(f func() time.Duration) {
	p.mu.Lock()
	p.latency, p.spread = 0, f
	p.mu.Unlock()
}

// LogNormal returns draws of a log-normal latency with the given median
// and 99th percentile, the usual shape of a service's response times. It is
// safe for concurrent use.
func LogNormal(median, p99 time.Duration) func() time.Duration {
	const z99 = 2.3263478740408408 // the standard normal's 99th percentile
	sigma := math.Log(float64(p99)/float64(median)) / z99
	return func() time.Duration {
		return time.Duration(float64(median) * math.Exp(sigma*mrand.NormFloat64()))
	}
}

// Counts returns a snapshot of the counters.
func (p *Proxy) Counts() Counts {
	c := Counts{Requests: p.requests.Load(), Forwarded: p.forwarded.Load(), Faulted: map[Kind]int64{}, ByOp: map[string]int64{}}
	for k := Kind(1); k < numKinds; k++ {
		if n := p.faulted[k].Load(); n > 0 {
			c.Faulted[k] = n
		}
	}
	p.opsMu.Lock()
	for op, n := range p.byOp {
		c.ByOp[op] = n
	}
	p.opsMu.Unlock()
	return c
}

// Faulted returns how many requests faults of kind k answered.
func (p *Proxy) Faulted(k Kind) int64 {
	if k <= Forward || k >= numKinds {
		return 0
	}
	return p.faulted[k].Load()
}

func (p *Proxy) expireLocked(now time.Time) {
	if p.fault != nil && p.fault.For > 0 && !now.Before(p.until) {
		p.fault = nil
	}
}

// decide returns what to do with a request of operation op, taking a unit of
// the active fault's count if it applies.
func (p *Proxy) decide(op string, body []byte) (Kind, []byte, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(time.Now())
	f := p.fault
	if f == nil || (len(f.Ops) > 0 && !slices.Contains(f.Ops, op)) || (len(f.Match) > 0 && !bytes.Contains(body, f.Match)) ||
		(f.Share > 0 && f.Share < 1 && mrand.Float64() >= f.Share) {
		if p.spread != nil {
			return Forward, nil, p.spread()
		}
		return Forward, nil, p.latency
	}
	if f.Count > 0 {
		p.left--
		if p.left <= 0 {
			p.fault = nil
		}
	}
	return f.Kind, f.Match, 0
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	p.opsMu.Lock()
	p.byOp[op]++
	p.opsMu.Unlock()

	// Read the request as DynamoDB would before answering, so the client
	// is not cut off mid-send (and so faults can match its body).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	kind, match, latency := p.decide(op, body)
	if kind == Forward {
		if latency > 0 && !wait(r.Context(), latency) {
			return
		}
		p.forwarded.Add(1)
		p.rp.ServeHTTP(w, r)
		return
	}
	p.faulted[kind].Add(1)
	if _, ok := statementErrors[kind]; ok {
		p.faultStatements(w, r, body, kind, match)
		return
	}
	switch kind {
	case Hang:
		<-r.Context().Done()
		return
	case LoseAnswer:
		p.rp.ServeHTTP(discard{h: http.Header{}}, r)
		<-r.Context().Done() // the client went away (or the proxy closed)
		return
	}
	if kind == Drop {
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("faultproxy: connection cannot be hijacked")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	a := answers[kind]
	answer := fmt.Sprintf(`{"__type":%q,"message":%q}`, a.typ, a.message)
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", requestID())
	h.Set("Content-Length", fmt.Sprint(len(answer)))
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, answer)
}

// discard is a ResponseWriter that throws the answer away.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func requestID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// faultStatements answers a BatchExecuteStatement whose statements holding
// match fail with kind's error; the others are forwarded to DynamoDB.
func (p *Proxy) faultStatements(w http.ResponseWriter, r *http.Request, body []byte, kind Kind, match []byte) {
	var in struct{ Statements []json.RawMessage }
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "faultproxy: not a BatchExecuteStatement body", http.StatusBadRequest)
		return
	}
	hit := make([]bool, len(in.Statements))
	var keep []json.RawMessage
	for i, st := range in.Statements {
		if hit[i] = bytes.Contains(st, match); !hit[i] {
			keep = append(keep, st)
		}
	}
	var forwarded []json.RawMessage
	h := w.Header()
	if len(keep) > 0 {
		fb, _ := json.Marshal(map[string]any{"Statements": keep})
		r2 := r.Clone(r.Context())
		r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(fb)), int64(len(fb))
		r2.Header.Set("Content-Length", strconv.Itoa(len(fb)))
		rec := httptest.NewRecorder()
		p.forwarded.Add(1)
		p.rp.ServeHTTP(rec, r2)
		var out struct{ Responses []json.RawMessage }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || len(out.Responses) != len(keep) {
			// Pass DynamoDB's own failure on as it is.
			for k, v := range rec.Header() {
				h[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		forwarded = out.Responses
		h.Set("X-Amzn-Requestid", rec.Header().Get("X-Amzn-Requestid"))
	} else {
		h.Set("X-Amzn-Requestid", requestID())
	}
	e := statementErrors[kind]
	faulted, _ := json.Marshal(map[string]any{"Error": map[string]string{"Code": e[0], "Message": e[1]}})
	resps := make([]json.RawMessage, len(in.Statements))
	for i := range resps {
		if hit[i] {
			resps[i] = faulted
		} else {
			resps[i], forwarded = forwarded[0], forwarded[1:]
		}
	}
	ob, _ := json.Marshal(map[string]any{"Responses": resps})
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(ob)))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(ob)), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ob)
}
