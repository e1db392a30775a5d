package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stopWithoutKafka stops s, whose Kafka is gone: ingest's group cannot
// leave cleanly then, and serve says so; anything else is an error.
func stopWithoutKafka(t *testing.T, s *stack) {
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil && !strings.Contains(err.Error(), "kafka") && !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("serve did not stop within a minute")
	}
}

// TestRoleReadiness: the API is ready while DynamoDB answers, whatever Kafka
// does (role all keeps answering reads when Kafka goes away; role api never
// connects to Kafka); the ingest role's readiness follows its own Kafka
// group, serves probes and /metrics but no API routes, and needs no auth
// file. Liveness never depends on a dependency. On real kfake and DynamoDB
// Local. Fails before: /readyz of serve turned 503 when Kafka went away.
func TestRoleReadiness(t *testing.T) {
	t.Parallel()
	account := randomSID("AC")

	t.Run("all", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, account)
		eventually(t, time.Minute, "ready", func() bool { return status(t, s.api+"/readyz") == http.StatusOK })
		s.kafka.Close()
		// Kafka is gone: ingest notices at its next metadata refresh; the
		// API must stay ready throughout. Ingest's own readiness (the
		// controller lookup) fails at once, so check a few times.
		for range 5 {
			if c := status(t, s.api+"/readyz"); c != http.StatusOK {
				t.Fatalf("role all: /readyz %d with Kafka down, want 200 (reads do not need Kafka)", c)
			}
		}
		var msg map[string]any
		if c := s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+randomSID("SM"), &msg); c != http.StatusNotFound {
			t.Errorf("role all, Kafka down: get %d, want 404 from DynamoDB", c)
		}
		stopWithoutKafka(t, s)
	})

	t.Run("api", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, account, func(f *serveFlags) { f.role = "api"; f.brokers = "127.0.0.1:1" })
		eventually(t, time.Minute, "ready", func() bool { return status(t, s.api+"/readyz") == http.StatusOK })
		if c := s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+randomSID("SM"), nil); c != http.StatusNotFound {
			t.Errorf("role api, no Kafka: get %d, want 404", c)
		}
	})

	t.Run("ingest", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, account, func(f *serveFlags) { f.role = "ingest"; f.authFile = "" })
		eventually(t, time.Minute, "ready", func() bool { return status(t, s.api+"/readyz") == http.StatusOK })
		if c := status(t, s.api+"/metrics"); c != http.StatusOK {
			t.Errorf("role ingest: /metrics %d", c)
		}
		if c := s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+randomSID("SM"), nil); c != http.StatusNotFound {
			t.Errorf("role ingest: API route answered %d, want 404 (no API here)", c)
		}
		s.kafka.Close()
		eventually(t, time.Minute, "unready without Kafka", func() bool { return status(t, s.api+"/readyz") == http.StatusServiceUnavailable })
		if c := status(t, s.api+"/healthz"); c != http.StatusOK {
			t.Errorf("role ingest, Kafka down: /healthz %d, want 200 (liveness checks no dependency)", c)
		}
		stopWithoutKafka(t, s)
	})
}
