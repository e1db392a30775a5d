package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Responses as DynamoDB writes them (TableName in every response, an error
// per failed statement, capacity by table and index), as the fake endpoint
// writes them, and laid out differently.
var batchOutputShapes = []string{
	`{"Responses":[{"TableName":"postflight-messages"},{"Error":{"Code":"DuplicateItem","Message":"Duplicate primary key exists in table"},"TableName":"postflight-messages"},{"TableName":"postflight-messages"}],"ConsumedCapacity":[{"CapacityUnits":6.0,"GlobalSecondaryIndexes":{"by-date":{"CapacityUnits":2.0,"ReadCapacityUnits":0.0,"WriteCapacityUnits":2.0}},"Table":{"CapacityUnits":4.0,"WriteCapacityUnits":4.0},"TableName":"postflight-messages","WriteCapacityUnits":6.0}]}`,
	`{"Responses":[{},{"Error":{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}},{}],"ConsumedCapacity":[{"TableName":"t","CapacityUnits":5,"Table":{"CapacityUnits":3},"GlobalSecondaryIndexes":{"by-date":{"CapacityUnits":2}}}]}`,
	`{"Responses":[{"Error":{"Code":"ValidationError","Message":"One or more parameter values were invalid"},"TableName":"t"}]}`,
	`{"ConsumedCapacity":[{"CapacityUnits":1.5e0,"TableName":"t"}],"Responses":[]}`,
	"{\n  \"Responses\" : [ { } , {\"Item\": {\"p\": {\"S\": \"x\"}, \"n\": {\"N\": \"-1.25E+2\"}, \"b\": {\"BOOL\": true}, \"z\": {\"NULL\": true}, \"l\": {\"L\": [false, null, 0, -0.5]}}} ] ,\n  \"ConsumedCapacity\" : [ ]\n}\n",
	`{"Responses":[{}],"ConsumedCapacity":[{"CapacityUnits":2,"GlobalSecondaryIndexes":{}}],"Extra":{"a":[1,2,{"b":"c"}]}}`,
}

// Inputs the fast path must leave to encoding/json: an escape, a key that
// matches a field only by case, a null, a repeated field, a malformed or
// truncated body, trailing data, a number out of float64's range.
var batchOutputFallbacks = []string{
	`{"Responses":[{"Error":{"Code":"ValidationError","Message":"bad \"value\" in \u00e9"}}]}`,
	`{"responses":[{"Error":{"Code":"DuplicateItem"}}]}`,
	`{"Responses":[{"error":{"Code":"DuplicateItem"}}]}`,
	`{"Responses":[{"Error":{"code":"DuplicateItem"}}]}`,
	`{"Responses":[{"Error":null}]}`,
	`{"Responses":null}`,
	`{"Responses":[{}],"Responses":[{},{}]}`,
	`{"ConsumedCapacity":[{"GlobalSecondaryIndexes":{"a":{"CapacityUnits":1},"a":{"CapacityUnits":2}}}]}`,
	`{"Responses":[{},]}`,
	`{"Responses":[{}]`,
	`{"Responses":[{}]} x`,
	`{"ConsumedCapacity":[{"CapacityUnits":1e400}]}`,
	`{"ConsumedCapacity":[{"CapacityUnits":01}]}`,
	`{"ConsumedCapacity":[{"CapacityUnits":"1"}]}`,
	`{"Responſes":[{}]}`,
	`null`,
	``,
}

// The fast path reads DynamoDB's answers itself, and exactly as
// encoding/json does.
func TestBatchOutputFastPathReadsDynamoDBShapes(t *testing.T) {
	for _, p := range batchOutputShapes {
		var fast, want batchOutput
		if !fastBatchOutput([]byte(p), &fast) {
			t.Errorf("fast path gave up on %s", p)
			continue
		}
		if err := json.Unmarshal([]byte(p), &want); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("%s:\nfast %+v\njson %+v", p, fast, want)
		}
	}
}

// What the fast path is not sure of goes to encoding/json: the same result,
// the same error.
func TestBatchOutputFallsBackToEncodingJSON(t *testing.T) {
	for _, p := range batchOutputFallbacks {
		var fast batchOutput
		if fastBatchOutput([]byte(p), &fast) {
			t.Errorf("fast path took %s", p)
		}
		var got, want batchOutput
		gerr, werr := decodeBatchOutput([]byte(p), &got), json.Unmarshal([]byte(p), &want)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Errorf("%s: error %v, encoding/json %v", p, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ngot  %+v\njson %+v", p, got, want)
		}
	}
}

// FuzzBatchOutput holds the fast path to encoding/json: whenever it reads
// an input, encoding/json reads it too, to the same value.
func FuzzBatchOutput(f *testing.F) {
	for _, p := range append(batchOutputShapes, batchOutputFallbacks...) {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var fast batchOutput
		if !fastBatchOutput(p, &fast) {
			return
		}
		var want batchOutput
		if err := json.Unmarshal(p, &want); err != nil {
			t.Fatalf("fast path read %q, encoding/json: %v", p, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q:\nfast %+v\njson %+v", p, fast, want)
		}
	})
}

// BenchmarkBatchOutput reads a 25-statement response as DynamoDB writes it
// (one failed INSERT), by the fast path and by encoding/json.
func BenchmarkBatchOutput(b *testing.B) {
	p := []byte(`{"Responses":[`)
	for i := range MaxBatch {
		if i > 0 {
			p = append(p, ',')
		}
		if i == 7 {
			p = append(p, `{"Error":{"Code":"DuplicateItem","Message":"Duplicate primary key exists in table"},"TableName":"postflight-messages"}`...)
		} else {
			p = append(p, `{"TableName":"postflight-messages"}`...)
		}
	}
	p = append(p, `],"ConsumedCapacity":[{"CapacityUnits":49.0,"GlobalSecondaryIndexes":{"by-date":{"CapacityUnits":24.0}},"Table":{"CapacityUnits":25.0},"TableName":"postflight-messages"}]}`...)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out batchOutput
			if err := decodeBatchOutput(p, &out); err != nil || len(out.Responses) != MaxBatch {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out batchOutput
			if err := json.Unmarshal(p, &out); err != nil || len(out.Responses) != MaxBatch {
				b.Fatal(err)
			}
		}
	})
}
