package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postflight/postflight/ingest"
)

func writeSchema(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "new.avsc")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newestContract() string { cs := ingest.Contracts(); return cs[len(cs)-1].JSON }

func TestSchemaCheck(t *testing.T) {
	additive := strings.Replace(newestContract(), `"fields": [`, `"fields": [{"name": "carrier", "type": ["null", "string"], "default": null},`, 1)
	renamed := strings.Replace(newestContract(), `"CANCELED"`, `"CANCELLED"`, 1)
	for _, c := range []struct {
		name, schema string
		args         []string
		wantErr      bool
		want         string
	}{
		{"newest contract", newestContract(), nil, false, "fully compatible with all 2 earlier versions"},
		{"additive", additive, []string{"--against", "contract"}, false, "ok    contract v1"},
		{"renamed enum symbol", renamed, nil, true, "MessageEvent.status: backward (new reads old): enum Status: symbol CANCELED is written but unknown to the reader"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"schema", "check", writeSchema(t, c.schema)}, c.args...)
			err := run(context.Background(), args, func(string) string { return "" }, &out, &out)
			if (err != nil) != c.wantErr || (c.wantErr && !errors.Is(err, errIncompatible)) || !strings.Contains(out.String(), c.want) {
				t.Fatalf("err %v, output:\n%s\nwant %q", err, out.String(), c.want)
			}
		})
	}
}

// TestSchemaCheckRegistry checks against every version of a registry
// subject. The registry is a fake speaking the Confluent REST API's two
// calls (no Confluent Schema Registry is within this project's reach).
func TestSchemaCheckRegistry(t *testing.T) {
	versions := map[string]string{"1": ingest.Contracts()[0].JSON, "2": ingest.Contracts()[1].JSON}
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		switch {
		case r.URL.Path == "/subjects/message-events-value/versions":
			fmt.Fprint(w, "[1,2]")
		case strings.HasPrefix(r.URL.Path, "/subjects/message-events-value/versions/"):
			v := strings.TrimPrefix(r.URL.Path, "/subjects/message-events-value/versions/")
			b, _ := json.Marshal(map[string]any{"subject": "message-events-value", "version": v, "id": v, "schema": versions[v]})
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	broken := strings.Replace(newestContract(), `"name": "sequence",
      "type": "long"`, `"name": "sequence",
      "type": "string"`, 1)
	if broken == newestContract() {
		t.Fatal("test schema edit did not apply")
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"schema", "check", writeSchema(t, broken), "--against", "registry", "--schema-registry", reg.URL},
		func(string) string { return "" }, &out, &out)
	if !errors.Is(err, errIncompatible) || !strings.Contains(out.String(), "FAIL  message-events-value version 2") ||
		!strings.Contains(out.String(), "MessageEvent.sequence: backward (new reads old): type changed: written as long, read as string") {
		t.Fatalf("err %v, output:\n%s", err, out.String())
	}
}
