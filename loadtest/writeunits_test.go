package loadtest

import (
	"strings"
	"testing"
)

// TestWriteUnitsPerStoredState: the run reads the service's billed write
// units (base table and index) and its applied writes from /metrics, and
// the report divides one by the other over the run.
func TestWriteUnitsPerStoredState(t *testing.T) {
	text := metricsText + `postflight_store_write_units_total{op="insert",table="base"} 110
postflight_store_write_units_total{op="insert",table="index"} 100
postflight_store_write_units_total{op="update",table="base"} 12
postflight_store_write_units_total{op="update",table="index"} 10
postflight_store_writes_total{outcome="applied"} 110
postflight_store_writes_total{outcome="superseded"} 7
`
	s, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s.WriteUnits["base"] != 122 || s.WriteUnits["index"] != 110 || s.Applied != 110 {
		t.Fatalf("write units %v, applied %v", s.WriteUnits, s.Applied)
	}
	base := ServiceSample{WriteUnits: map[string]float64{"base": 22, "index": 10}, Applied: 10}
	var r Report
	r.setWriteUnits(base, s)
	r.Evaluate(DefaultCriteria())
	if r.ServiceWriteUnits["base"] != 100 || r.ServiceWriteUnits["index"] != 100 || r.ServiceStoredStates != 100 ||
		r.WriteUnitsPerStoredState != 2 {
		t.Fatalf("report: units %v, stored %d, per stored %v", r.ServiceWriteUnits, r.ServiceStoredStates, r.WriteUnitsPerStoredState)
	}
}
