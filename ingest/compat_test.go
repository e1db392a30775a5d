package ingest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// TestShippedContractsFullyCompatible: every shipped version is fully
// (backward and forward) compatible with every version before it. This is
// the gate `postflight schema check` applies to a new version.
func TestShippedContractsFullyCompatible(t *testing.T) {
	cs := Contracts()
	for i, newer := range cs {
		for _, older := range cs[:i] {
			if incs := CheckFull(newer.Schema, older.Schema); len(incs) > 0 {
				t.Errorf("v%d against v%d: %v", newer.Version, older.Version, incs)
			}
		}
	}
	if last := cs[len(cs)-1]; last.Schema.Fingerprint() != readerSchema.Fingerprint() {
		t.Errorf("the newest shipped contract (v%d) is not ingest's reader schema", last.Version)
	}
}

// mutateV2 returns the v2 contract with f applied to its field list.
func mutateV2(t *testing.T, f func(fields []any) []any) avro.Schema {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(schemaV2JSON), &doc); err != nil {
		t.Fatal(err)
	}
	doc["fields"] = f(doc["fields"].([]any))
	b, _ := json.Marshal(doc)
	s, err := avro.Parse(string(b))
	if err != nil {
		t.Fatalf("mutated schema: %v", err)
	}
	return s
}

func field(fields []any, name string) map[string]any {
	for _, f := range fields {
		if m := f.(map[string]any); m["name"] == name {
			return m
		}
	}
	panic("no field " + name)
}

func without(fields []any, name string) []any {
	return slices.DeleteFunc(slices.Clone(fields), func(f any) bool { return f.(map[string]any)["name"] == name })
}

var schemaMutations = []struct {
	name   string
	mutate func([]any) []any
	want   []string // substrings of the findings; none: compatible
}{
	{"additive: optional field with a default", func(fs []any) []any {
		return append(fs, map[string]any{"name": "carrier", "type": []any{"null", "string"}, "default": nil})
	}, nil},
	{"type change", func(fs []any) []any {
		field(fs, "sequence")["type"] = "string"
		return fs
	}, []string{"MessageEvent.sequence: backward (new reads old): type changed: written as long, read as string",
		"MessageEvent.sequence: forward (old reads new): type changed: written as string, read as long"}},
	{"removed field without default", func(fs []any) []any { return without(fs, "from") },
		[]string{"MessageEvent.from: forward (old reads new): field is missing in the writer's schema and has no default"}},
	{"new field without default", func(fs []any) []any {
		return append(fs, map[string]any{"name": "carrier", "type": "string"})
	}, []string{"MessageEvent.carrier: backward (new reads old): field is missing in the writer's schema and has no default"}},
	{"renamed enum symbol", func(fs []any) []any {
		st := field(fs, "status")["type"].(map[string]any)
		syms := st["symbols"].([]any)
		syms[len(syms)-1] = "CANCELLED"
		return fs
	}, []string{"MessageEvent.status: backward (new reads old): enum Status: symbol CANCELED is written but unknown",
		"MessageEvent.status: forward (old reads new): enum Status: symbol CANCELLED is written but unknown"}},
	{"added enum symbol", func(fs []any) []any {
		ch := field(fs, "channel")["type"].(map[string]any)
		ch["symbols"] = append(ch["symbols"].([]any), "EMAIL")
		return fs
	}, []string{"MessageEvent.channel: forward (old reads new): enum Channel: symbol EMAIL is written but unknown"}},
	{"widened int to long", func(fs []any) []any {
		field(fs, "num_media")["type"] = "long"
		return fs
	}, []string{"MessageEvent.num_media: forward (old reads new): type changed: written as long, read as int"}},
	{"optional made required", func(fs []any) []any {
		f := field(fs, "body")
		f["type"] = "string"
		delete(f, "default")
		return fs
	}, []string{"MessageEvent.body<null>: backward (new reads old): type changed: written as null, read as string"}},
	{"map values changed", func(fs []any) []any {
		field(fs, "tags")["type"] = map[string]any{"type": "map", "values": "int"}
		field(fs, "tags")["default"] = map[string]any{}
		return fs
	}, []string{"MessageEvent.tags<values>: backward (new reads old): type changed: written as string, read as int"}},
}

// TestSchemaChanges: breaking changes are rejected with the exact field
// and reason; additive ones pass.
func TestSchemaChanges(t *testing.T) {
	for _, m := range schemaMutations {
		t.Run(m.name, func(t *testing.T) {
			s := mutateV2(t, m.mutate)
			var got []string
			for _, older := range Contracts() {
				for _, inc := range CheckFull(s, older.Schema) {
					got = append(got, inc.String())
				}
			}
			if len(m.want) == 0 && len(got) > 0 {
				t.Fatalf("compatible change rejected: %v", got)
			}
			for _, w := range m.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("missing finding %q in\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

// TestCheckReadableAgreesWithHamba holds the path-naming checker to hamba's
// resolution (its oracle): the same verdict in both directions, for every
// mutation and every shipped version.
func TestCheckReadableAgreesWithHamba(t *testing.T) {
	for _, m := range schemaMutations {
		s := mutateV2(t, m.mutate)
		for _, older := range Contracts() {
			for _, pair := range [][2]avro.Schema{{s, older.Schema}, {older.Schema, s}} {
				mine := len(CheckReadable(pair[0], pair[1])) == 0
				hamba := avro.NewSchemaCompatibility().Compatible(pair[0], pair[1]) == nil
				if mine != hamba {
					t.Errorf("%s against v%d: ours says readable=%v, hamba %v (%v)", m.name, older.Version, mine, hamba,
						CheckReadable(pair[0], pair[1]))
				}
			}
		}
	}
}
