package faultproxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postflight/postflight/internal/faultproxy"
	"github.com/postflight/postflight/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// client talks to url with the real SDK and no retries, so every call is
// one request.
func client(url string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(url),
		Retryer:      aws.NopRetryer{},
	})
}

func listTables(t *testing.T, db *dynamodb.Client) error {
	t.Helper()
	_, err := db.ListTables(t.Context(), &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
	return err
}

func TestProxy(t *testing.T) {
	px, err := faultproxy.Start(testenv.DynamoDBEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	db := client(px.URL())

	if err := listTables(t, db); err != nil {
		t.Fatalf("forwarded call: %v", err)
	}

	// Each kind reaches the SDK as DynamoDB's own error would.
	tests := []struct {
		kind   faultproxy.Kind
		status int
		check  func(error) bool
	}{
		{faultproxy.Throttle, 400, func(err error) bool { var e *types.ThrottlingException; return errors.As(err, &e) }},
		{faultproxy.ProvisionedThroughput, 400, func(err error) bool {
			var e *types.ProvisionedThroughputExceededException
			return errors.As(err, &e)
		}},
		{faultproxy.InternalError, 500, func(err error) bool { var e *types.InternalServerError; return errors.As(err, &e) }},
		{faultproxy.Unavailable, 503, func(err error) bool {
			var e smithy.APIError
			return errors.As(err, &e) && e.ErrorCode() == "ServiceUnavailable"
		}},
		{faultproxy.Drop, 0, func(err error) bool { var e smithy.APIError; return err != nil && !errors.As(err, &e) }},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			px.Inject(faultproxy.Fault{Kind: tt.kind, Count: 2})
			for i := range 2 {
				err := listTables(t, db)
				if !tt.check(err) {
					t.Fatalf("call %d: got %v (%T)", i, err, err)
				}
				var re *smithyhttp.ResponseError
				if tt.status != 0 && (!errors.As(err, &re) || re.HTTPStatusCode() != tt.status) {
					t.Fatalf("call %d: want HTTP %d, got %v", i, tt.status, err)
				}
			}
			if px.Active() {
				t.Fatal("fault still active after Count requests")
			}
			if err := listTables(t, db); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
			if got := px.Faulted(tt.kind); got != 2 {
				t.Fatalf("Faulted(%s) = %d, want 2", tt.kind, got)
			}
		})
	}

	t.Run("ops", func(t *testing.T) {
		px.Inject(faultproxy.Fault{Kind: faultproxy.InternalError, Ops: []string{"BatchExecuteStatement"}})
		defer px.Heal()
		if err := listTables(t, db); err != nil {
			t.Fatalf("ListTables is not among the faulted ops, got %v", err)
		}
		_, err := db.BatchExecuteStatement(t.Context(), &dynamodb.BatchExecuteStatementInput{
			Statements: []types.BatchStatementRequest{{Statement: aws.String(`SELECT * FROM "nope"`)}},
		})
		var e *types.InternalServerError
		if !errors.As(err, &e) {
			t.Fatalf("BatchExecuteStatement: got %v, want InternalServerError", err)
		}
	})

	t.Run("for", func(t *testing.T) {
		px.Inject(faultproxy.Fault{Kind: faultproxy.Unavailable, For: 200 * time.Millisecond})
		if err := listTables(t, db); err == nil {
			t.Fatal("call during the fault succeeded")
		}
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for px.Active() {
			if time.Now().After(deadline) {
				t.Fatal("a 200ms fault still active after 10s")
			}
			<-tick.C
		}
		if err := listTables(t, db); err != nil {
			t.Fatalf("after the fault: %v", err)
		}
	})

	t.Run("heal", func(t *testing.T) {
		px.Inject(faultproxy.Fault{Kind: faultproxy.Throttle})
		if err := listTables(t, db); err == nil {
			t.Fatal("call during the fault succeeded")
		}
		px.Heal()
		if err := listTables(t, db); err != nil {
			t.Fatalf("after Heal: %v", err)
		}
	})

	t.Run("lose_answer", func(t *testing.T) {
		// The request reaches DynamoDB and takes effect; the client only
		// sees its own deadline pass.
		name := "lost-" + t.Name()[len("TestProxy/"):]
		px.Inject(faultproxy.Fault{Kind: faultproxy.LoseAnswer, Count: 1, Ops: []string{"CreateTable"}})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CreateTable with its answer lost: got %v, want the client's deadline", err)
		}
		if _, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
			t.Fatalf("the table whose answer was lost was not created: %v", err)
		}
		if got := px.Faulted(faultproxy.LoseAnswer); got != 1 {
			t.Fatalf("Faulted(lose_answer) = %d, want 1", got)
		}
	})

	t.Run("latency", func(t *testing.T) {
		px.SetLatency(150 * time.Millisecond)
		defer px.SetLatency(0)
		start := time.Now()
		if err := listTables(t, db); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("call took %s with 150ms latency", d)
		}
	})

	c := px.Counts()
	if c.Requests != c.Forwarded+sum(c.Faulted) || c.ByOp["ListTables"] == 0 || c.ByOp["BatchExecuteStatement"] != 1 || c.ByOp["CreateTable"] != 1 {
		t.Fatalf("counts do not add up: %+v", c)
	}
}

func sum(m map[faultproxy.Kind]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
