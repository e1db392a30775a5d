package store

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

// capturingClient returns a DynamoDB client whose HTTP client is a stub
// (no DynamoDB is involved: the test compares request bodies, which only
// the SDK and the store produce) that records each request's body and
// answers BatchExecuteStatement with n empty responses.
func capturingClient(t *testing.T, bodies *[][]byte) *dynamodb.Client {
	t.Helper()
	do := smithyhttp.ClientDoFunc(func(r *http.Request) (*http.Response, error) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		*bodies = append(*bodies, b)
		var req struct{ Statements []json.RawMessage }
		if err := json.Unmarshal(b, &req); err != nil {
			t.Errorf("request body is not JSON: %v\n%s", err, b)
		}
		resp := `{"Responses":[` + strings.TrimSuffix(strings.Repeat(`{},`, len(req.Statements)), ",") + `]}`
		return &http.Response{
			StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
			Body: io.NopCloser(strings.NewReader(resp)), ContentLength: int64(len(resp)), Request: r,
		}, nil
	})
	return dynamodb.New(dynamodb.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		BaseEndpoint: aws.String("http://127.0.0.1:1"), HTTPClient: do, DisableValidateResponseChecksum: true,
	})
}

// TestBatchBodyMatchesSDK serializes the same batch once by the SDK, from
// AttributeValues, and once by appendStatement, and wants the same JSON.
func TestBatchBodyMatchesSDK(t *testing.T) {
	var bodies [][]byte
	db := capturingClient(t, &bodies)
	var st statements
	st.init(`odd "table".name`)
	r := mrand.New(mrand.NewPCG(3, 4))
	g := newBodyGen(5)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var encs []*encoded
	for i := range 25 {
		m := realisticMessage(r, g, created.Add(time.Duration(i)*time.Second))
		if i == 0 { // every character class the escaper handles
			m.From, m.To = "\"quoted\" \\ back\x01\x1f\t\n\r <&> ü €", "whatsapp:+15550001111"
		}
		encs = append(encs, encode(m, keydesign.IndexPK(m.AccountSID, 3), created.Add(400*24*time.Hour)))
	}
	for _, k := range []stmtKind{kindInsert, kindUpdate} {
		bodies = bodies[:0]
		reqs := make([]types.BatchStatementRequest, len(encs))
		ours := []byte(`{"Statements":[`)
		for j, e := range encs {
			reqs[j] = types.BatchStatementRequest{Statement: aws.String(st.text(k)), Parameters: e.params(k, 0)}
			if j > 0 {
				ours = append(ours, ',')
			}
			ours = st.appendStatement(ours, k, e)
		}
		ours = append(ours, batchBodyEnd...)
		if _, err := db.BatchExecuteStatement(context.Background(), &dynamodb.BatchExecuteStatementInput{
			Statements: reqs, ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes,
		}); err != nil {
			t.Fatal(err)
		}
		var sdk, mine any
		if err := json.Unmarshal(bodies[0], &sdk); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ours, &mine); err != nil {
			t.Fatalf("written body is not JSON: %v", err)
		}
		if !reflect.DeepEqual(sdk, mine) {
			t.Errorf("kind %d: bodies differ\nSDK:  %.600s\nours: %.600s", k, bodies[0], ours)
		}
		if sdk := len(bodies[0]); len(ours) > sdk*105/100 {
			t.Errorf("written body %d bytes, SDK's %d", len(ours), sdk)
		}
	}
}

// TestBatchBodySize checks that execute's size estimate covers the body,
// so building it never grows the buffer.
func TestBatchBodySize(t *testing.T) {
	var st statements
	st.init("t")
	r := mrand.New(mrand.NewPCG(1, 2))
	g := newBodyGen(3)
	for range 2000 {
		m := realisticMessage(r, g, time.Now())
		e := encode(m, keydesign.IndexPK(m.AccountSID, 0), time.Now().Add(time.Hour))
		for _, k := range []stmtKind{kindInsert, kindUpdate} {
			if n, est := len(st.appendStatement(nil, k, e)), st.batchBodySize(k, e); n > est || est > n*13/10+100 {
				t.Fatalf("statement of %d bytes, estimate %d", n, est)
			}
		}
	}
}

// FuzzAppendJSONString: whatever the string, the output is one JSON string
// that encoding/json reads as it reads its own encoding of the string.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "\x00\x1f\x7f", "ü€𝄞", "\xff\xfe", "a\xc3", "\u2028<&>", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString([]byte("x"), s)[1:]
		var got, want string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q encoded as %q: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q: read back %q, encoding/json gives %q", s, got, want)
		}
	})
}

// TestPackMatchesHamba holds appendRecord to hamba's encoding of the same
// record: byte for byte without tags (hamba writes map blocks with their
// byte size, a form Avro allows but appendRecord does not need), and
// through hamba's decoder always.
func TestPackMatchesHamba(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 8))
	g := newBodyGen(9)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	msgs := []*postflight.Message{{DateUpdated: created}, edgeMessage(created)}
	for range 3000 {
		msgs = append(msgs, realisticMessage(r, g, created))
	}
	for _, m := range msgs {
		want := packRecord(m)
		ref, err := recordAPI.Marshal(recordSchema, &want)
		if err != nil {
			t.Fatal(err)
		}
		ours := appendRecord(nil, m)
		if len(m.Tags) == 0 && !bytes.Equal(ours, ref) {
			t.Fatalf("appendRecord differs from hamba\nours:  %x\nhamba: %x", ours, ref)
		}
		var got record
		if err := recordAPI.Unmarshal(recordSchema, ours, &got); err != nil {
			t.Fatalf("hamba cannot read appendRecord's output: %v", err)
		}
		if len(got.Tags) == 0 && len(want.Tags) == 0 {
			got.Tags, want.Tags = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %+v, want %+v", got, want)
		}
		if len(ours)+1 > packedSize(m) {
			t.Fatalf("packedSize %d under the %d bytes packed", packedSize(m), len(ours)+1)
		}
		var back postflight.Message
		if err := unpack(pack(m), &back); err != nil {
			t.Fatal(err)
		}
		if back.DateUpdated != m.DateUpdated.Truncate(time.Millisecond) || !reflect.DeepEqual(back.Body, m.Body) || len(back.Tags) != len(m.Tags) {
			t.Fatalf("unpack(pack(m)) = %+v", back)
		}
	}
}

// packRecord is the record hamba would be given for m.
func packRecord(m *postflight.Message) record {
	r := record{
		Channel: int32(m.Channel), Direction: int32(m.Direction), NumSegments: m.NumSegments, NumMedia: m.NumMedia,
		Body: m.Body, PriceMicros: m.PriceMicros, PriceUnit: m.PriceUnit, ErrorCode: m.ErrorCode,
		MessagingServiceSID: m.MessagingServiceSID, ContentSID: m.ContentSID, Tags: m.Tags,
		DateUpdated: m.DateUpdated.UnixMilli(),
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	if m.DateSent != nil {
		ms := m.DateSent.UnixMilli()
		r.DateSent = &ms
	}
	return r
}

// edgeMessage has every optional field, extreme numbers and several tags.
func edgeMessage(created time.Time) *postflight.Message {
	body, unit, svc, content := strings.Repeat("é", 300), "", "MG0", "HX"
	price, code := int64(-1<<63), int32(-1<<31)
	sent := created.Add(-100 * 365 * 24 * time.Hour)
	return &postflight.Message{
		Channel: postflight.ChannelRCS, Direction: postflight.DirectionOutboundReply, NumSegments: 1<<31 - 1, NumMedia: 10,
		Body: &body, PriceMicros: &price, PriceUnit: &unit, ErrorCode: &code, MessagingServiceSID: &svc, ContentSID: &content,
		Tags: map[string]string{"a": "1", "b": "", "ü": strings.Repeat("x", 200)}, DateSent: &sent, DateUpdated: created,
	}
}
