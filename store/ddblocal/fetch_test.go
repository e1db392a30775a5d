package ddblocal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/postflight/postflight/internal/localjvm"
	"github.com/postflight/postflight/internal/localjvm/jvmtest"
)

// lockName and tempPrefix are how localjvm.CachedDir names the lock file
// and the temporary directories of a fetch.
const (
	lockName   = dirName + ".lock"
	tempPrefix = "." + dirName + ".tmp-"
)

// countingPack runs the real npm pack and counts the calls.
func countingPack(n *atomic.Int32) func(context.Context, string) error {
	return func(ctx context.Context, dir string) error {
		n.Add(1)
		return npmPack(ctx, dir)
	}
}

func TestFetchCachedDoesNotRunNpm(t *testing.T) {
	t.Parallel()
	cacheDir, dir := fetchShared(t)
	jar := filepath.Join(dir, jarName)
	before, err := os.Stat(jar)
	if err != nil {
		t.Fatal(err)
	}
	f := fetcher{log: jvmtest.Logger(t), pack: func(context.Context, string) error {
		t.Error("npm pack ran although the cache was valid")
		return nil
	}}
	got, err := f.fetch(t.Context(), cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if got != dir {
		t.Errorf("second fetch returned %q, first %q", got, dir)
	}
	after, err := os.Stat(jar)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Errorf("jar was rewritten by a cached fetch")
	}
}

func TestFetchRefetchesCorruptedJar(t *testing.T) {
	t.Parallel()
	_, shared := fetchShared(t)
	cacheDir := t.TempDir()
	dir := filepath.Join(cacheDir, dirName)
	jvmtest.CopyDir(t, shared, dir)
	jvmtest.FlipByte(t, filepath.Join(dir, jarName))
	if err := verify(dir); err == nil || !strings.Contains(err.Error(), "want "+JarSHA256) {
		t.Fatalf("verify of corrupted jar = %v, want a hash mismatch", err)
	}
	// A fetch that died half way left this behind.
	stale := filepath.Join(cacheDir, tempPrefix+"123")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}

	// Several fetchers (as from parallel test binaries) notice the damage at
	// once; the lock lets only the first download.
	var packs atomic.Int32
	f := fetcher{log: jvmtest.Logger(t), pack: countingPack(&packs)}
	const n = 3
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = f.fetch(t.Context(), cacheDir) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("fetch %d: %v", i, errs[i])
		}
		if dirs[i] != dir {
			t.Errorf("fetch %d returned %q, want %q", i, dirs[i], dir)
		}
	}
	if got := packs.Load(); got != 1 {
		t.Errorf("npm pack ran %d times for %d concurrent fetches, want 1", got, n)
	}
	if err := verify(dir); err != nil {
		t.Errorf("after refetch: %v", err)
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{dirName, lockName}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("cache dir holds %v, want %v (temporary dirs cleaned up)", names, want)
	}
}

func TestFetchWithoutNpm(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Fetch(t.Context(), t.TempDir(), jvmtest.Logger(t))
	if err == nil {
		t.Fatal("fetch without npm on PATH succeeded")
	}
	if want := "install Node.js and npm (Debian/Ubuntu: apt-get install nodejs npm)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestFetchCancelledWhileLocked(t *testing.T) {
	cacheDir := t.TempDir()
	unlock, err := localjvm.LockFile(t.Context(), filepath.Join(cacheDir, lockName))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = fetcher{pack: func(context.Context, string) error {
		t.Error("npm pack ran without the lock")
		return nil
	}}.fetch(ctx, cacheDir)
	if err == nil || !strings.Contains(err.Error(), "wait for lock") {
		t.Errorf("fetch with the lock held and ctx cancelled = %v, want a lock wait error", err)
	}
}
