package awsconf

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

type recordingClient struct{ req *http.Request }

func (c *recordingClient) Do(r *http.Request) (*http.Response, error) {
	c.req = r
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// The SDK's wrapped body reaches net/http copied in memory, with the same
// bytes and a GetBody for resending. (That net/http then sends headers and
// body in one write was checked with strace: one write per request fewer.)
func TestInMemoryBody(t *testing.T) {
	body := strings.Repeat(`{"Statements":[]}`, 1000)
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", struct{ io.Reader }{strings.NewReader(body)})
	r.ContentLength = int64(len(body))
	rec := &recordingClient{}
	if _, err := (inMemoryBody{rec}).Do(r); err != nil {
		t.Fatal(err)
	}
	if rec.req.GetBody == nil {
		t.Fatal("no GetBody")
	}
	for range 2 {
		rc, _ := rec.req.GetBody()
		got, _ := io.ReadAll(rc)
		if !bytes.Equal(got, []byte(body)) {
			t.Fatal("GetBody returns other bytes")
		}
	}
	got, _ := io.ReadAll(rec.req.Body)
	if string(got) != body {
		t.Fatal("body changed")
	}
}

func TestIsLoopback(t *testing.T) {
	for ep, want := range map[string]bool{
		"http://localhost:8000": true, "http://127.0.0.1:8000": true, "http://[::1]:8000": true,
		"https://dynamodb.us-east-1.amazonaws.com": false, "": false, "http://10.0.0.1": false,
	} {
		if got := isLoopback(ep); got != want {
			t.Errorf("isLoopback(%q) = %v", ep, got)
		}
	}
}

type unreadable struct{}

func (unreadable) Read([]byte) (int, error) { panic("body read by inMemoryBody") }

// A request that can already replay its body (GetBody) is passed on as is.
func TestInMemoryBodyLeavesReplayableBodies(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", io.NopCloser(unreadable{}))
	r.ContentLength = 10
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(unreadable{}), nil }
	rec := &recordingClient{}
	if _, err := (inMemoryBody{rec}).Do(r); err != nil {
		t.Fatal(err)
	}
}
