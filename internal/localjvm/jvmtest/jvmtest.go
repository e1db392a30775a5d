// Package jvmtest holds the helpers the JVM launchers' tests share
// (store/ddblocal, internal/kafkalocal). Only tests import it.
package jvmtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/localjvm"
)

// Logger writes to the test's output at debug level (shown on failure or
// with -v).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// FetchShared runs a launcher's fetch into the shared cache directory
// (localjvm.DefaultCacheDir), as every test binary does, so only the
// machine's first run downloads; timeout bounds it. It returns the cache
// directory and the directory fetch returned.
func FetchShared(t testing.TB, timeout time.Duration,
	fetch func(ctx context.Context, cacheDir string, log *slog.Logger) (string, error)) (cacheDir, dir string) {
	t.Helper()
	cacheDir, err := localjvm.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	dir, err = fetch(ctx, cacheDir, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return cacheDir, dir
}

// CopyDir copies the regular files and directories under src to dst
// (a cached copy to damage, or a download that needs no network).
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FlipByte corrupts one byte in the middle of path.
func FlipByte(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, st.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// AssertGroupGone fails unless no process is left in the process group of
// the JVM with pid (a zombie counts: it is not reaped yet).
func AssertGroupGone(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists (kill -0: %v): JVM leaked", pid, err)
	}
}
