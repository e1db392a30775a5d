package store

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Write units: the bill
//
// DynamoDB bills every write, failed conditional ones included, per 1 KB
// of item, and every index write again. The event-write batches ask for
// their consumed capacity (ReturnConsumedCapacity INDEXES, see batchBodyEnd)
// and the store counts it as postflight.store.write_units, by table (base,
// index) and statement kind (insert, update), next to postflight.store.writes
// (messages by outcome): their ratio is the write units a record costs.

// batchOutput is a BatchExecuteStatement response.
type batchOutput struct {
	Responses        []statementResult
	ConsumedCapacity []consumedCapacity
}

// consumedCapacity is one entry of a response's ConsumedCapacity, as
// DynamoDB returns it for ReturnConsumedCapacity INDEXES.
type consumedCapacity struct {
	CapacityUnits          float64
	Table                  *capacityUnits
	GlobalSecondaryIndexes map[string]capacityUnits
}

type capacityUnits struct{ CapacityUnits float64 }

// units splits consumed capacity into the base table's and the indexes'.
// Without a per-table breakdown, what the indexes did not take is the base
// table's.
func units(cc []consumedCapacity) (base, index float64) {
	for _, c := range cc {
		var idx float64
		for _, u := range c.GlobalSecondaryIndexes {
			idx += u.CapacityUnits
		}
		index += idx
		if c.Table != nil {
			base += c.Table.CapacityUnits
		} else {
			base += c.CapacityUnits - idx
		}
	}
	return base, index
}

// unitAttrs are the write-unit counter's attribute sets, built once: by
// statement kind, base table then index.
type unitAttrs [2][2][]metric.AddOption

func newUnitAttrs() unitAttrs {
	var a unitAttrs
	for k, op := range []string{"insert", "update"} {
		for t, table := range []string{"base", "index"} {
			a[k][t] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("op", op), attribute.String("table", table)))}
		}
	}
	return a
}

// countUnits adds the capacity a batch of statements of kind k consumed.
func (s *Store) countUnits(ctx context.Context, k stmtKind, cc []consumedCapacity) {
	base, index := units(cc)
	op := 0
	if k != kindInsert {
		op = 1
	}
	if base > 0 {
		s.m.writeUnits.Add(ctx, base, s.m.unitAttrs[op][0]...)
	}
	if index > 0 {
		s.m.writeUnits.Add(ctx, index, s.m.unitAttrs[op][1]...)
	}
}
