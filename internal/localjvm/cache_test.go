package localjvm

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("POSTFLIGHT_CACHE_DIR", "/some/where")
	if got, err := DefaultCacheDir(); err != nil || got != "/some/where" {
		t.Errorf("with POSTFLIGHT_CACHE_DIR: %q, %v", got, err)
	}
	t.Setenv("POSTFLIGHT_CACHE_DIR", "")
	user, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DefaultCacheDir(); err != nil || got != filepath.Join(user, "postflight") {
		t.Errorf("without it: %q, %v, want %s/postflight", got, err, user)
	}
}

// TestCachedDirFetch runs Fetch with a download that writes one file; the
// launchers' tests run it on their real downloads.
func TestCachedDirFetch(t *testing.T) {
	const body = "good"
	tests := []struct {
		name string
		// before prepares the cache directory.
		before        func(t *testing.T, cacheDir string)
		downloadErr   error
		wantDownloads int32
		wantErr       string
	}{
		{name: "empty cache", wantDownloads: 1},
		{name: "valid copy", before: func(t *testing.T, cacheDir string) {
			writeFile(t, filepath.Join(cacheDir, "thing-1", "file"), body)
		}},
		{name: "damaged copy", before: func(t *testing.T, cacheDir string) {
			writeFile(t, filepath.Join(cacheDir, "thing-1", "file"), "bad")
		}, wantDownloads: 1},
		{name: "stale temporary directory", before: func(t *testing.T, cacheDir string) {
			writeFile(t, filepath.Join(cacheDir, ".thing-1.tmp-123", "file"), "half")
		}, wantDownloads: 1},
		{name: "download fails", downloadErr: errors.New("no network"), wantDownloads: 1, wantErr: "no network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			if tt.before != nil {
				tt.before(t, cacheDir)
			}
			var downloads atomic.Int32
			c := CachedDir{
				Name: "Thing", Dir: "thing-1", From: "nowhere",
				Verify: func(dir string) error {
					b, err := os.ReadFile(filepath.Join(dir, "file"))
					if err != nil {
						return err
					}
					if string(b) != body {
						return errors.New("damaged")
					}
					return nil
				},
				Download: func(_ context.Context, gotCache, work string) (string, error) {
					downloads.Add(1)
					if gotCache != cacheDir || filepath.Dir(work) != cacheDir ||
						!strings.HasPrefix(filepath.Base(work), ".thing-1.tmp-") {
						t.Errorf("Download(%s, %s): want the cache dir and a temporary directory in it", gotCache, work)
					}
					if tt.downloadErr != nil {
						return "", tt.downloadErr
					}
					writeFile(t, filepath.Join(work, "staged", "file"), body)
					return filepath.Join(work, "staged"), nil
				},
			}
			dir, err := c.Fetch(t.Context(), cacheDir, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if n := downloads.Load(); n != tt.wantDownloads {
				t.Errorf("%d downloads, want %d", n, tt.wantDownloads)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Fetch = %v, want an error containing %q", err, tt.wantErr)
				}
			} else if err != nil || dir != filepath.Join(cacheDir, "thing-1") || c.Verify(dir) != nil {
				t.Errorf("Fetch = %s, %v; want a verified %s", dir, err, filepath.Join(cacheDir, "thing-1"))
			}
			entries, err := os.ReadDir(cacheDir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			want := "thing-1,thing-1.lock"
			if tt.wantErr != "" {
				want = "thing-1.lock"
			}
			if got := strings.Join(names, ","); got != want {
				t.Errorf("cache dir holds %s, want %s", got, want)
			}
		})
	}
}

func TestCachedDirEmpty(t *testing.T) {
	_, err := CachedDir{}.Fetch(t.Context(), "", nil)
	if err == nil || err.Error() != "empty cache dir" {
		t.Errorf("Fetch with no cache dir = %v", err)
	}
}

func TestRun(t *testing.T) {
	if err := Run(exec.CommandContext(t.Context(), "sh", "-c", "echo fine")); err != nil {
		t.Errorf("Run: %v", err)
	}
	err := Run(exec.CommandContext(t.Context(), "sh", "-c", "head -c 3000 /dev/zero | tr '\\0' x; echo; echo last words >&2; exit 2"))
	if err == nil || !strings.HasPrefix(err.Error(), "exit status 2: xxx") || !strings.HasSuffix(err.Error(), "xxx\nlast words") ||
		len(err.Error()) > len("exit status 2: ")+outputQuoted {
		t.Errorf("Run of a failing command = %v, want its exit and the last %d bytes of its output", err, outputQuoted)
	}
	// ctx ends (before or after the start): Run returns an error.
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 300 & echo started; wait")
	done := make(chan error, 1)
	go func() { done <- Run(cmd) }()
	cancel()
	if err := <-done; err == nil {
		t.Error("Run after ctx ended returned nil")
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
