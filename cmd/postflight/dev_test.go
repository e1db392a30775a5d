package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
)

// TestDev runs what `make run` runs (postflight dev) on ports of its own,
// with each Kafka it offers: an event produced to its broker is read back
// through its API with the token it printed, and Ctrl-C (ctx) stops it all,
// DynamoDB Local's JVM (and Apache Kafka's) included.
func TestDev(t *testing.T) {
	for _, kafka := range []string{"embedded", "apache"} {
		t.Run(kafka, func(t *testing.T) {
			// dev writes its auth and token files to the temporary
			// directory: this test's own, not a developer's.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			kafkaPort, ddbAddr, listen := freeTCPPort(t), "127.0.0.1:"+strconv.Itoa(freeTCPPort(t)), "127.0.0.1:"+strconv.Itoa(freeTCPPort(t))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr testenv.SyncBuffer
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("dev's output:\n%s\n%s", stdout.String(), stderr.String())
				}
			})
			done := make(chan error, 1)
			go func() {
				done <- runDev(ctx, []string{"--kafka", kafka, "--kafka-port", strconv.Itoa(kafkaPort),
					"--dynamodb-addr", ddbAddr, "--listen", listen, "--partitions", "2"},
					func(string) string { return "" }, &stdout, &stderr)
			}()
			var token string
			eventually(t, 5*time.Minute, "dev to print its token (fetching and starting the JVMs)", func() bool {
				select {
				case err := <-done:
					t.Fatalf("dev returned before it was stopped: %v\n%s", err, stderr.String())
				default:
				}
				b, err := os.ReadFile(filepath.Join(tmp, "postflight-dev-token"))
				token = strings.TrimSpace(string(b))
				return err == nil && token != ""
			})
			if !strings.Contains(stdout.String(), token) || !strings.Contains(stdout.String(), "http://"+listen) {
				t.Errorf("dev's banner does not show its token and API:\n%s", stdout.String())
			}

			account, sid := randomSID("AC"), randomSID("SM")
			produce(t, []string{"127.0.0.1:" + strconv.Itoa(kafkaPort)},
				record(t, newEvent(account, sid, 3, postflight.StatusDelivered, time.Now().Add(-time.Minute)), ingest.SchemaIDv2))
			eventually(t, time.Minute, "the event through dev's API", func() bool {
				req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/v1/accounts/"+account+"/messages/"+sid, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("dev returned %v after Ctrl-C", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("dev did not stop within a minute of Ctrl-C")
			}
			for _, addr := range []string{ddbAddr, "127.0.0.1:" + strconv.Itoa(kafkaPort), listen} {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Errorf("%s still answers after dev stopped", addr)
				}
			}
		})
	}
}

// freeTCPPort returns a port free on 127.0.0.1 a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
