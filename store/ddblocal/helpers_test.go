package ddblocal

import (
	"context"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/localjvm/jvmtest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// fetchShared fetches into the shared cache: only the machine's first run
// downloads.
func fetchShared(t testing.TB) (cacheDir, dir string) {
	t.Helper()
	return jvmtest.FetchShared(t, 5*time.Minute, Fetch)
}

// start starts DynamoDB Local and stops it in Cleanup.
func start(t testing.TB, cfg Config) *Process {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = jvmtest.Logger(t)
	}
	p, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, p) })
	return p
}

func stop(t testing.TB, p *Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(endpoint),
	})
}
