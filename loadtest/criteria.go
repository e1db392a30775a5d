package loadtest

import (
	"errors"
	"fmt"
	"math"
)

// Verdicts in Report.Criteria and HeatResult.Criteria.
const (
	Pass = "pass"
	Fail = "fail"
)

func passFail(ok bool) string {
	if ok {
		return Pass
	}
	return Fail
}

// ErrCriteriaFailed is returned (wrapped) by the CLI when a report was
// written but at least one success criterion failed.
var ErrCriteriaFailed = errors.New("success criteria failed")

// Names of the criteria in Report.Criteria.
const (
	CriterionWriteRate   = "writes_per_sec"
	CriterionWriteP99    = "write_p99"
	CriterionReadP99     = "read_p99"
	CriterionIndexLagP99 = "index_lag_p99"
	CriterionLost        = "lost"
	CriterionWrong       = "wrong"
)

// Criteria are a run's success thresholds. Every field is an inclusive bound.
type Criteria struct {
	// MinWriteRateRatio: writes_per_sec ≥ this × requested_rate.
	MinWriteRateRatio float64 `json:"min_write_rate_ratio"`
	MaxWriteP99Ms     float64 `json:"max_write_p99_ms"`
	MaxReadP99Ms      float64 `json:"max_read_p99_ms"`
	MaxIndexLagP99Ms  float64 `json:"max_index_lag_p99_ms"`
	MaxLost           int64   `json:"max_lost"`
	MaxWrong          int64   `json:"max_wrong"`
}

// DefaultCriteria returns the defaults: writes ≥ 95% of the requested rate,
// write p99 ≤ 50 ms, read p99 ≤ 100 ms, index lag p99 ≤ 1 s, nothing lost,
// nothing wrong.
func DefaultCriteria() Criteria {
	return Criteria{
		MinWriteRateRatio: 0.95,
		MaxWriteP99Ms:     50,
		MaxReadP99Ms:      100,
		MaxIndexLagP99Ms:  1000,
	}
}

// Validate rejects negative or non-finite thresholds.
func (c Criteria) Validate() error {
	for name, v := range map[string]float64{
		"min write rate ratio": c.MinWriteRateRatio,
		"max write p99":        c.MaxWriteP99Ms,
		"max read p99":         c.MaxReadP99Ms,
		"max index lag p99":    c.MaxIndexLagP99Ms,
	} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("criteria: %s %v must be finite and ≥ 0", name, v)
		}
	}
	if c.MaxLost < 0 || c.MaxWrong < 0 {
		return fmt.Errorf("criteria: max lost %d and max wrong %d must be ≥ 0", c.MaxLost, c.MaxWrong)
	}
	return nil
}

// Evaluate judges r against c: it records c as r.Thresholds and fills
// r.Criteria with a verdict per criterion. It also derives the field that
// depends on scalars a runner sets last (ServiceCPUMicrosPerRecord) and sets
// r.Bottleneck to Diagnose(r) (a runner that knows better may overwrite it
// afterwards). Call it after every measurement is in; calling it again with
// other criteria re-judges.
func (r *Report) Evaluate(c Criteria) {
	r.Thresholds = c
	if r.ServiceRecords > 0 {
		r.ServiceCPUMicrosPerRecord = r.ServiceCPUSeconds * 1e6 / float64(r.ServiceRecords)
	}
	if r.ServiceStoredStates > 0 {
		r.WriteUnitsPerStoredState = (r.ServiceWriteUnits["base"] + r.ServiceWriteUnits["index"]) / float64(r.ServiceStoredStates)
	}
	r.Criteria = map[string]string{
		CriterionWriteRate:   passFail(r.WritesPerSec >= c.MinWriteRateRatio*r.RequestedRate),
		CriterionWriteP99:    passFail(r.WriteLatency.P99 <= c.MaxWriteP99Ms),
		CriterionReadP99:     passFail(r.ReadLatency.P99 <= c.MaxReadP99Ms),
		CriterionIndexLagP99: passFail(r.IndexLag.P99 <= c.MaxIndexLagP99Ms),
		CriterionLost:        passFail(r.Lost <= c.MaxLost),
		CriterionWrong:       passFail(r.Wrong <= c.MaxWrong),
	}
	r.Bottleneck = Diagnose(r)
}

// Passed reports whether r was evaluated and every criterion passed.
func (r *Report) Passed() bool {
	for _, v := range r.Criteria {
		if v != Pass {
			return false
		}
	}
	return len(r.Criteria) > 0
}
