package ddblocal

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/localjvm/jvmtest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func createTable(t *testing.T, db *dynamodb.Client, name string) {
	t.Helper()
	_, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
}

func TestStartListTablesStop(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	p := start(t, Config{Dir: dir, Addr: "127.0.0.1:0"})
	if !strings.HasPrefix(p.Endpoint(), "http://127.0.0.1:") || strings.HasSuffix(p.Endpoint(), ":0") {
		t.Errorf("endpoint %q, want http://127.0.0.1:<picked port>", p.Endpoint())
	}
	db := client(p.Endpoint())
	createTable(t, db, "things")
	out, err := db.ListTables(t.Context(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != "things" {
		t.Errorf("tables %v, want [things]", out.TableNames)
	}
	// -sharedDb: other credentials and region see the same tables.
	other := dynamodb.New(dynamodb.Options{Region: "eu-west-1", BaseEndpoint: aws.String(p.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("someone", "else", "")})
	if out, err := other.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil || len(out.TableNames) != 1 {
		t.Errorf("other credentials see %v, %v; want [things]", out, err)
	}

	pid := p.jvm.Pid()
	stop(t, p)
	jvmtest.AssertGroupGone(t, pid)
	if err := p.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	resp, err := http.Get(p.Endpoint())
	if err == nil {
		resp.Body.Close()
		t.Errorf("endpoint still answers after Stop")
	}
}

func TestDBPathSurvivesRestart(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	dbPath := t.TempDir() + "/nested/db" // Start creates it
	p := start(t, Config{Dir: dir, Addr: "127.0.0.1:0", DBPath: dbPath})
	createTable(t, client(p.Endpoint()), "kept")
	_, err := client(p.Endpoint()).PutItem(t.Context(), &dynamodb.PutItemInput{
		TableName: aws.String("kept"),
		Item:      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, p)

	p2 := start(t, p.Config())
	if p2.Endpoint() != p.Endpoint() {
		t.Errorf("restart on %s, want the same endpoint %s", p2.Endpoint(), p.Endpoint())
	}
	got, err := client(p2.Endpoint()).GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String("kept"),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
	})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got.Item == nil {
		t.Error("item lost across restart")
	}
}

func TestStartFailsWithoutLeakingJVM(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name string
		cfg  Config
		// cancelOnStart cancels Start's ctx as soon as the JVM runs.
		cancelOnStart bool
		wantErr       string
		wantJVM       bool // whether a JVM got started (and must be gone)
	}{
		{
			name:    "port in use",
			cfg:     Config{Addr: "127.0.0.1:" + strconv.Itoa(busyPort)},
			wantErr: "already in use",
		},
		{
			name:          "ctx cancelled during startup",
			cfg:           Config{Addr: "127.0.0.1:0"},
			cancelOnStart: true,
			wantErr:       "context canceled",
			wantJVM:       true,
		},
		{
			name:    "start timeout",
			cfg:     Config{Addr: "127.0.0.1:0", StartTimeout: time.Millisecond},
			wantErr: "not answering ListTables after 1ms",
			wantJVM: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var pid atomic.Int64
			cfg := tt.cfg
			cfg.Dir = dir
			cfg.Log = jvmtest.Logger(t)
			cfg.started = func(p int) {
				pid.Store(int64(p))
				if tt.cancelOnStart {
					cancel()
				}
			}
			p, err := Start(ctx, cfg)
			if err == nil {
				stop(t, p)
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if got := pid.Load() != 0; got != tt.wantJVM {
				t.Fatalf("JVM started: %v, want %v", got, tt.wantJVM)
			}
			if tt.wantJVM {
				jvmtest.AssertGroupGone(t, int(pid.Load()))
			}
		})
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	p := start(t, Config{Dir: dir, Addr: "127.0.0.1:0", StopTimeout: time.Nanosecond})
	pid := p.jvm.Pid()
	// Stop the JVM so it cannot handle SIGTERM: only SIGKILL ends it.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	jvmtest.AssertGroupGone(t, pid)
}

func TestStartWithoutJava(t *testing.T) {
	_, dir := fetchShared(t)
	t.Setenv("PATH", t.TempDir())
	p, err := Start(t.Context(), Config{Dir: dir, Addr: "127.0.0.1:0"})
	if err == nil {
		stop(t, p)
		t.Fatal("Start without java on PATH succeeded")
	}
	if want := "install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestConfigValidate(t *testing.T) {
	_, dir := fetchShared(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{Dir: dir}},
		{name: "explicit addr", cfg: Config{Dir: dir, Addr: "localhost:0"}},
		{name: "no dir", cfg: Config{}, wantErr: "dir is required"},
		{name: "dir without jar", cfg: Config{Dir: t.TempDir()}, wantErr: "no such file"},
		{name: "bad addr", cfg: Config{Dir: dir, Addr: "8000"}, wantErr: "addr"},
		{name: "bad port", cfg: Config{Dir: dir, Addr: "127.0.0.1:99999"}, wantErr: "bad port"},
		{name: "negative timeout", cfg: Config{Dir: dir, StartTimeout: -1}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
