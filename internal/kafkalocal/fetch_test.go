package kafkalocal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postflight/postflight/internal/localjvm/jvmtest"
)

// tempPrefix is how localjvm.CachedDir names the temporary directories of
// a fetch.
const tempPrefix = "." + dirName + ".tmp-"

// TestFetchReal resolves into the shared cache with the real mvn (a download
// only on the machine's first run) and checks the result against the pins.
func TestFetchReal(t *testing.T) {
	t.Parallel()
	_, dir := fetchShared(t)
	want, err := parseSums(jarSums)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(filepath.Join(dir, libsName), want); err != nil {
		t.Fatal(err)
	}
	// Exactly one slf4j binding, so nothing picks one at random or warns.
	var bindings []string
	for name := range want {
		if strings.HasPrefix(name, "log4j-slf4j") || strings.HasPrefix(name, "slf4j-") && name != "slf4j-api-1.7.36.jar" ||
			strings.HasPrefix(name, "logback-classic") {
			bindings = append(bindings, name)
		}
	}
	if len(bindings) != 1 {
		t.Errorf("slf4j bindings %v, want exactly one", bindings)
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	_, shared := fetchShared(t)
	tests := []struct {
		name string
		// damage changes the cached copy (nil: no cache at all).
		damage func(t *testing.T, libs string)
		// badResolves is how many resolves deliver a corrupted jar first.
		badResolves  int
		wantResolves int32
		wantErr      string
	}{
		{name: "empty cache", wantResolves: 1},
		{name: "valid cache", damage: func(*testing.T, string) {}, wantResolves: 0},
		{name: "corrupted jar", damage: func(t *testing.T, libs string) {
			jvmtest.FlipByte(t, filepath.Join(libs, "kafka-server-"+Version+".jar"))
		}, wantResolves: 1},
		{name: "truncated jar", damage: func(t *testing.T, libs string) {
			if err := os.Truncate(filepath.Join(libs, "kafka-clients-"+Version+".jar"), 100); err != nil {
				t.Fatal(err)
			}
		}, wantResolves: 1},
		{name: "missing jar", damage: func(t *testing.T, libs string) {
			if err := os.Remove(filepath.Join(libs, "scala-library-2.13.18.jar")); err != nil {
				t.Fatal(err)
			}
		}, wantResolves: 1},
		{name: "extra jar", damage: func(t *testing.T, libs string) {
			if err := os.WriteFile(filepath.Join(libs, "slf4j-simple-1.7.36.jar"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantResolves: 1},
		{name: "damaged maven repository", badResolves: 1, wantResolves: 2},
		{name: "always damaged", badResolves: 2, wantResolves: 2, wantErr: "kafka-server-" + Version + ".jar has sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cacheDir := t.TempDir()
			dir := filepath.Join(cacheDir, dirName)
			if tt.damage != nil {
				copyLibs(t, shared, filepath.Join(dir, libsName))
				tt.damage(t, filepath.Join(dir, libsName))
			}
			var resolves atomic.Int32
			f := fetcher{log: jvmtest.Logger(t), resolve: func(_ context.Context, pomPath, libs, repo string) error {
				n := resolves.Add(1)
				if got, err := os.ReadFile(pomPath); err != nil || string(got) != string(pom) {
					t.Errorf("resolve got pom %q (%v), want the embedded one", got, err)
				}
				if repo != filepath.Join(cacheDir, repoName) {
					t.Errorf("maven repository %s, want %s", repo, filepath.Join(cacheDir, repoName))
				}
				if err := os.MkdirAll(repo, 0o755); err != nil {
					return err
				}
				copyLibs(t, shared, libs)
				if int(n) <= tt.badResolves {
					jvmtest.FlipByte(t, filepath.Join(libs, "kafka-server-"+Version+".jar"))
				}
				return nil
			}}
			got, err := f.fetch(t.Context(), cacheDir)
			if n := resolves.Load(); n != tt.wantResolves {
				t.Errorf("%d resolves, want %d", n, tt.wantResolves)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("fetch error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != dir {
				t.Errorf("fetch returned %s, want %s", got, dir)
			}
			want, _ := parseSums(jarSums)
			if err := verify(filepath.Join(dir, libsName), want); err != nil {
				t.Errorf("after fetch: %v", err)
			}
			if stale, _ := filepath.Glob(filepath.Join(cacheDir, tempPrefix+"*")); len(stale) > 0 {
				t.Errorf("temporary directories left: %v", stale)
			}
		})
	}
}

// TestFetchConcurrent: several fetchers at once resolve only once.
func TestFetchConcurrent(t *testing.T) {
	t.Parallel()
	_, shared := fetchShared(t)
	cacheDir := t.TempDir()
	var resolves atomic.Int32
	f := fetcher{resolve: func(_ context.Context, _, libs, _ string) error {
		resolves.Add(1)
		copyLibs(t, shared, libs)
		return nil
	}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := f.fetch(t.Context(), cacheDir); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := resolves.Load(); n != 1 {
		t.Errorf("%d resolves, want 1", n)
	}
}

func TestFetchWithoutMaven(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Fetch(t.Context(), t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "apt-get install maven") {
		t.Errorf("fetch without mvn: %v, want an error saying what to install", err)
	}
	if errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v looks like a missing cache", err)
	}
}
