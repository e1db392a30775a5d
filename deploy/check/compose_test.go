package check

import (
	"context"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// TestComposeConfig loads deploy/docker-compose.yml as `docker compose
// config` does (compose-go: schema validation, interpolation, merge keys,
// dependency checks) and checks the services the README promises.
func TestComposeConfig(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithOsEnv, cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kafka", "dynamodb", "ingest", "api", "prometheus", "grafana", "otel-collector", "jaeger"} {
		if !slices.Contains(p.ServiceNames(), want) {
			t.Errorf("no service %q in docker-compose.yml (have %v)", want, p.ServiceNames())
		}
	}
	for name, role := range map[string]string{"ingest": "ingest", "api": "api"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Command[:3], []string{"serve", "--role", role}) {
			t.Errorf("%s runs %v, want serve --role %s", name, s.Command, role)
		}
		if s.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == nil {
			t.Errorf("%s exports no telemetry", name)
		}
	}
	k, _ := p.GetService("kafka")
	if r := k.Environment["KAFKA_PROCESS_ROLES"]; r == nil || *r != "broker,controller" {
		t.Errorf("kafka is not a KRaft broker+controller: %v", r)
	}
}
