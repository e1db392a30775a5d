package kafkalocal

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/postflight/postflight/internal/localjvm/jvmtest"
)

// fetchShared fetches into the shared cache: only the machine's first run
// downloads.
func fetchShared(t testing.TB) (cacheDir, dir string) {
	t.Helper()
	return jvmtest.FetchShared(t, 10*time.Minute, Fetch)
}

// copyLibs copies the verified jars of dir into libsDir (a resolver that
// needs no network).
func copyLibs(t testing.TB, dir, libsDir string) {
	t.Helper()
	jvmtest.CopyDir(t, filepath.Join(dir, libsName), libsDir)
}
