package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// metricRef finds metric names in PromQL: ours, the process collector's and
// the Go runtime's. Recording rules (postflight:…) have a colon and are not
// matched.
var metricRef = regexp.MustCompile(`\b(?:postflight|process|go)_[a-z0-9_]+\b`)

// TestDeployMetricNamesExist: every metric the alert rules and the Grafana
// dashboard in deploy/ query is in a live /metrics scrape of serve, after it
// ingested a good event and a poison one and answered API requests (real
// kfake and DynamoDB Local). A renamed metric fails here, not on call.
func TestDeployMetricNamesExist(t *testing.T) {
	t.Parallel()
	var want []string
	for _, f := range []string{"../../deploy/prometheus/alerts.yaml", "../../deploy/grafana/postflight.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Comments may name metrics too; only expressions matter, but a
		// stale name in a comment is worth failing on as well.
		for _, m := range metricRef.FindAllString(string(b), -1) {
			want = append(want, m+"\t"+f)
		}
	}
	if len(want) < 10 {
		t.Fatalf("found only %d metric references in deploy/: is the pattern right?", len(want))
	}

	account := randomSID("AC")
	s := startStack(t, account)
	sid := randomSID("SM")
	produce(t, s.brokers,
		record(t, newEvent(account, sid, 3, postflight.StatusDelivered, time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)), ingest.SchemaIDv2),
		&sarama.ProducerMessage{Topic: "message-events", Key: sarama.StringEncoder("junk"), Value: sarama.ByteEncoder("not avro")})
	eventually(t, time.Minute, "message stored", func() bool {
		return s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+sid, nil) == http.StatusOK
	})
	// A retention change: its re-stamp job is pending (not due for two
	// config refreshes), which is when the stalled gauge has a series.
	req, _ := http.NewRequest(http.MethodPut, s.api+"/v1/accounts/"+account+"/retention", strings.NewReader(`{"days":30}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT retention: %d", resp.StatusCode)
	}
	have := map[string]bool{}
	eventually(t, time.Minute, "freshness observed and the retention job seen", func() bool {
		have = scrape(t, s.api+"/metrics")
		return have["postflight_ingest_event_age_seconds_bucket"] && have["postflight_ingest_delay_seconds_bucket"] &&
			have["postflight_store_retention_stalled_seconds"]
	})
	var missing []string
	for _, w := range want {
		name, file, _ := strings.Cut(w, "\t")
		if !have[name] {
			missing = append(missing, name+" ("+file+")")
		}
	}
	if len(missing) > 0 {
		var names []string
		for n := range have {
			if strings.HasPrefix(n, "postflight_") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		t.Errorf("deploy/ queries metrics /metrics does not serve:\n  %s\nserved: %s", strings.Join(missing, "\n  "), strings.Join(names, " "))
	}
}

// scrape returns the sample names of a Prometheus text exposition
// (histograms as their _bucket, _sum and _count series).
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
