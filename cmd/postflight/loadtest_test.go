package main

// The load test against the real stack: `serve` on Apache Kafka and DynamoDB
// Local (startApacheStack), driven by loadtest.Run as `loadtest run` drives it. Short
// and slow (about 300 events/s) so it checks correctness, not speed.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/loadtest"
	"github.com/postflight/postflight/store"
)

func TestLoadtest(t *testing.T) {
	s := startApacheStack(t, randomSID("AC"))
	db := testenv.DynamoDBClient(t, s.flags.dynamodbEndpoint)
	st, err := store.New(db, store.Config{Table: s.flags.table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	config := func(mode string) loadtest.RunConfig {
		cfg := loadtest.DefaultRunConfig()
		cfg.Mode = mode
		cfg.Brokers, cfg.Topic, cfg.Service, cfg.Token = s.brokers, s.topic, s.api, testToken
		cfg.DynamoDBEndpoint, cfg.Table = s.flags.dynamodbEndpoint, s.flags.table
		cfg.Rate, cfg.Duration = 75, 4*time.Second // ~300 events/s
		cfg.ReadsPerSec, cfg.ProbesPerSec = 20, 10
		cfg.Accounts = 300
		cfg.VerifyTimeout = 30 * time.Second
		return cfg
	}
	deps := func(t *testing.T) loadtest.Deps {
		return loadtest.Deps{Store: st, Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	}

	t.Run("kafka", func(t *testing.T) {
		rep, err := loadtest.Run(t.Context(), config(loadtest.ModeKafka), deps(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", summary(t, rep))
		if rep.Lost != 0 || rep.Wrong != 0 || rep.ProducedFinal == 0 || rep.Verified != rep.ProducedFinal {
			t.Fatalf("produced final %d, verified %d, lost %d, wrong %d", rep.ProducedFinal, rep.Verified, rep.Lost, rep.Wrong)
		}
		if rep.Criteria[loadtest.CriterionLost] != loadtest.Pass || rep.Criteria[loadtest.CriterionWrong] != loadtest.Pass {
			t.Errorf("criteria %v", rep.Criteria)
		}
		if rep.Generator.Events < 3*rep.Generator.Messages || rep.Writes == 0 {
			t.Errorf("%d events for %d messages, %d writes", rep.Generator.Events, rep.Generator.Messages, rep.Writes)
		}
		// Every event was consumed, and the service's CPU measured.
		if rep.ServiceRecords < rep.Generator.Events || rep.ServiceCPUMicrosPerRecord <= 0 || len(rep.ConsumerLag) == 0 {
			t.Errorf("service records %d for %d events, %.1f µs/record, %d lag points",
				rep.ServiceRecords, rep.Generator.Events, rep.ServiceCPUMicrosPerRecord, len(rep.ConsumerLag))
		}
		measured(t, rep)
	})

	t.Run("direct", func(t *testing.T) {
		rep, err := loadtest.Run(t.Context(), config(loadtest.ModeDirect), deps(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", summary(t, rep))
		// Every message is written final, once.
		if rep.Lost != 0 || rep.Wrong != 0 || rep.ProducedFinal != rep.Generator.Messages || rep.Verified != rep.ProducedFinal {
			t.Fatalf("messages %d, produced final %d, verified %d, lost %d, wrong %d",
				rep.Generator.Messages, rep.ProducedFinal, rep.Verified, rep.Lost, rep.Wrong)
		}
		if rep.Writes != rep.ProducedFinal {
			t.Errorf("%d writes recorded for %d messages", rep.Writes, rep.ProducedFinal)
		}
		measured(t, rep)
	})

	// Records removed from the table behind the service's back are lost;
	// records changed after the fact (a redacted body) are wrong.
	t.Run("tampered records are counted", func(t *testing.T) {
		const deleted, redacted = 5, 2
		cfg := config(loadtest.ModeKafka)
		cfg.VerifyTimeout = 10 * time.Second
		d := deps(t)
		var victims []string
		d.BeforeVerify = func(ctx context.Context, final []*loadtest.MessagePlan) error {
			// Messages with one final event sent once: once it is stored
			// nothing of theirs is still in flight to write it back.
			var picked []*loadtest.MessagePlan
			for _, p := range final {
				if dup := len(p.Emissions) > 0 && p.Emissions[len(p.Emissions)-1].Duplicate; p.Finals == 1 && !dup && len(picked) < deleted+redacted {
					picked = append(picked, p)
				}
			}
			if len(picked) < deleted+redacted {
				return fmt.Errorf("only %d messages to tamper with", len(picked))
			}
			keys := make([]store.Key, len(picked))
			for i, p := range picked {
				keys[i] = store.Key{Account: p.Account, SID: p.SID}
			}
			eventually(t, 30*time.Second, "the picked messages stored", func() bool {
				got, err := st.BatchGet(ctx, keys)
				if err != nil {
					t.Fatal(err)
				}
				seqs := map[string]int64{}
				for _, m := range got {
					seqs[m.SID] = m.Sequence
				}
				for _, p := range picked {
					if seqs[p.SID] != p.Final.Sequence {
						return false
					}
				}
				return true
			})
			for _, p := range picked[:deleted] {
				_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
					TableName: &s.flags.table,
					Key: map[string]types.AttributeValue{
						keydesign.AttrPK: &types.AttributeValueMemberS{Value: p.SID},
						keydesign.AttrSK: &types.AttributeValueMemberS{Value: p.Account},
					},
				})
				if err != nil {
					return err
				}
				victims = append(victims, p.SID)
			}
			for _, p := range picked[deleted:] {
				if code := patch(t, s, "/v1/accounts/"+p.Account+"/messages/"+p.SID, `{"body": ""}`); code != http.StatusOK {
					return fmt.Errorf("redact %s: HTTP %d", p.SID, code)
				}
			}
			return nil
		}
		rep, err := loadtest.Run(t.Context(), cfg, d)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", summary(t, rep))
		if rep.Lost != deleted || rep.Wrong != redacted || rep.Verified != rep.ProducedFinal-deleted-redacted {
			t.Fatalf("lost %d (want %d), wrong %d (want %d), verified %d of %d", rep.Lost, deleted, rep.Wrong, redacted, rep.Verified, rep.ProducedFinal)
		}
		if rep.Criteria[loadtest.CriterionLost] != loadtest.Fail || rep.Criteria[loadtest.CriterionWrong] != loadtest.Fail || rep.Passed() {
			t.Errorf("criteria %v: lost and wrong must fail", rep.Criteria)
		}
		if !strings.Contains(rep.Bottleneck, "lost") && !strings.Contains(rep.Bottleneck, "correctness") {
			t.Logf("bottleneck %q (an earlier rule matched first)", rep.Bottleneck)
		}
		if len(victims) != deleted {
			t.Errorf("deleted %d records", len(victims))
		}
	})
}

// measured checks the latencies a run must have measured at all.
func measured(t *testing.T, rep *loadtest.Report) {
	t.Helper()
	if rep.WriteLatency.Max <= 0 || rep.EndToEndLatency.Max <= 0 || rep.IndexLag.Max <= 0 || rep.Reads == 0 || rep.ReadLatency.Max <= 0 {
		t.Errorf("write %+v, end-to-end %+v, index lag %+v, %d reads %+v",
			rep.WriteLatency, rep.EndToEndLatency, rep.IndexLag, rep.Reads, rep.ReadLatency)
	}
	for _, k := range []string{"read_5xx", "read_4xx", "read_429", "read_network", "probe_timeout", "index_timeout", "produce"} {
		if rep.Errors[k] > 0 {
			t.Errorf("%d %s errors", rep.Errors[k], k)
		}
	}
}

func summary(t *testing.T, rep *loadtest.Report) string {
	var b strings.Builder
	if err := loadtest.WriteSummary(&b, rep); err != nil {
		t.Fatal(err)
	}
	return "\n" + b.String()
}

func patch(t *testing.T, s *stack, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, s.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
