package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

const metricsText = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# TYPE postflight_ingest_records_total counter
postflight_ingest_records_total{result="final"} 1000
postflight_ingest_records_total{result="non_final"} 3000
postflight_ingest_records_total{result="dead_letter",stage="decode"} 2
postflight_ingest_lag{partition="0",topic="message-events"} 5
postflight_ingest_lag{partition="1",topic="message-events"} 7 1700000000000
postflight_ingest_retries_total{cause="throttled"} 4
postflight_ingest_retries_total{cause="unavailable"} 1
postflight_ingest_retries_total{cause="throttled"} 2
other_metric{path="/v1/{id} x",quote="a\"}b"} 99
postflight_ingest_lag_total 1000
`

func TestParseMetrics(t *testing.T) {
	s, err := ParseMetrics(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasCPU || s.CPUSeconds != 12.5 || !s.HasRecords || s.Records != 4002 || !s.HasLag || s.Lag != 12 {
		t.Errorf("sample = %+v", s)
	}
	if s.Retries["throttled"] != 6 || s.Retries["unavailable"] != 1 {
		t.Errorf("retries = %v", s.Retries)
	}
	empty, err := ParseMetrics(strings.NewReader("# nothing\n"))
	if err != nil || empty.HasCPU || empty.HasLag || empty.HasRecords {
		t.Errorf("empty: %+v %v", empty, err)
	}
	if _, err := ParseMetrics(strings.NewReader("process_cpu_seconds_total many\n")); err == nil {
		t.Error("a non-numeric value parsed")
	}
}

func TestScraperWaitDrained(t *testing.T) {
	var records int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		records += 50 // the service consumes 50 records per scrape
		lag := max(0, 200-records)
		w.Write([]byte("process_cpu_seconds_total 1\npostflight_ingest_records_total{result=\"final\"} " + strconv.Itoa(records) +
			"\npostflight_ingest_lag{partition=\"0\"} " + strconv.Itoa(lag) + "\n"))
	}))
	defer srv.Close()
	s := newScraper(srv.Client(), srv.URL+"/")
	coll := NewCollector()
	base, err := s.scrape(context.Background())
	if err != nil || base.Records != 50 || s.currentLag() != 150 {
		t.Fatalf("first scrape: %+v %v lag %d", base, err, s.currentLag())
	}
	last, ok := s.waitDrained(context.Background(), base, 150, time.Now().Add(10*time.Second), coll)
	if !ok || last.Records < 200 || last.Lag != 0 {
		t.Fatalf("waitDrained = %+v, %v", last, ok)
	}
	_, ok = s.waitDrained(context.Background(), last, 1e9, time.Now(), coll)
	if ok {
		t.Error("drained without consuming the events")
	}
}
