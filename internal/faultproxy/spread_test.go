package faultproxy_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/faultproxy"
)

func TestLogNormalHasItsMedianAndP99(t *testing.T) {
	draw := faultproxy.LogNormal(4*time.Millisecond, 25*time.Millisecond)
	ds := make([]time.Duration, 50_000)
	for i := range ds {
		ds[i] = draw()
	}
	slices.Sort(ds)
	med, p99 := ds[len(ds)/2], ds[len(ds)*99/100]
	if med < 3600*time.Microsecond || med > 4400*time.Microsecond || p99 < 20*time.Millisecond || p99 > 30*time.Millisecond {
		t.Fatalf("median %v, p99 %v; want about 4ms and 25ms", med, p99)
	}
}

// TestPartialThrottle: a fault with Share answers about that fraction of
// requests (a fake backend here: only the proxy's own choice is tested) and
// forwards the rest.
func TestPartialThrottle(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	t.Cleanup(backend.Close)
	px, err := faultproxy.Start(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	px.Inject(faultproxy.Fault{Kind: faultproxy.Throttle, Share: 0.25})
	const n = 800
	for range n {
		resp, err := http.Post(px.URL(), "application/x-amz-json-1.0", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	c := px.Counts()
	throttled := c.Faulted[faultproxy.Throttle]
	if throttled < n/8 || throttled > n*3/8 || c.Forwarded != n-throttled {
		t.Fatalf("%d of %d throttled, %d forwarded; want about a quarter throttled, the rest forwarded", throttled, n, c.Forwarded)
	}
}
