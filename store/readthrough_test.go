package store_test

import (
	"testing"
	"time"
)

// TestConfigChangeKeepsServingConfig (issue 11, item 4): while a
// configuration change of an account is in flight (its fresh read is slow
// here, through a proxy adding latency), Account, which ingest calls on
// every write, keeps answering the account's configuration, never the
// process defaults.
func TestConfigChangeKeepsServingConfig(t *testing.T) {
	t.Parallel()
	s, px := proxiedStore(t)
	account := sid("AC")
	if _, err := s.SetRetention(t.Context(), account, 800); err != nil {
		t.Fatal(err)
	}
	if got := s.Account(account).RetentionDays; got != 800 {
		t.Fatalf("retention %d after setting 800", got)
	}
	px.SetLatency(300 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := s.SetShards(t.Context(), account, time.Now(), 4)
		done <- err
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	polls, wrong := 0, 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if wrong > 0 {
				t.Fatalf("during the change, Account answered the defaults %d times of %d", wrong, polls)
			}
			if c := s.Account(account); c.RetentionDays != 800 || c.Schedule.At(time.Now().Add(time.Hour)) != 4 {
				t.Fatalf("after the change: %+v", c)
			}
			t.Logf("%d polls during the change, all with the account's configuration", polls)
			return
		case <-tick.C:
			polls++
			if s.Account(account).RetentionDays != 800 {
				wrong++
			}
		}
	}
}
