package localjvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultCacheDir is where the launchers keep what they fetch unless told
// otherwise: $POSTFLIGHT_CACHE_DIR if set, else <user cache
// dir>/postflight (~/.cache/postflight on Linux).
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv("POSTFLIGHT_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache dir (set POSTFLIGHT_CACHE_DIR): %w", err)
	}
	return filepath.Join(dir, "postflight"), nil
}

// CachedDir is a directory a launcher downloads into a cache directory
// once and verifies on every use.
type CachedDir struct {
	// Name is what the directory holds, for log lines ("DynamoDB Local").
	Name string
	// Dir is the directory's name in the cache directory. Fetch serializes
	// on an flock of Dir+".lock" there and downloads into temporary
	// directories named "."+Dir+".tmp-*".
	Dir string
	// From and Attrs describe the download in the log line that
	// announces it: "fetching <Name> from <From>", Attrs...
	From  string
	Attrs []any
	// Verify reports whether dir holds a good copy; a missing dir gives an
	// error that wraps os.ErrNotExist.
	Verify func(dir string) error
	// Download fetches a copy into work, a new temporary directory in
	// cacheDir that Fetch removes afterwards, verifies it and returns the
	// directory in work that holds it.
	Download func(ctx context.Context, cacheDir, work string) (string, error)
}

// Fetch makes sure cacheDir/Dir holds a copy Verify accepts and returns
// that directory. A verified copy is returned without downloading.
// Otherwise (missing, or damaged: that is logged) Fetch removes the
// temporary directories a fetch that died half way left behind, calls
// Download, and renames what it returns into place, replacing a damaged
// copy.
//
// Concurrent callers, in this process or others, serialize on the lock
// file; only the first downloads. A nil log discards.
func (c CachedDir) Fetch(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cacheDir == "" {
		return "", errors.New("empty cache dir")
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := LockFile(ctx, filepath.Join(cacheDir, c.Dir+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	dir := filepath.Join(cacheDir, c.Dir)
	verr := c.Verify(dir)
	if verr == nil {
		return dir, nil
	}
	if !errors.Is(verr, os.ErrNotExist) {
		log.Warn("cached "+c.Name+" is damaged; fetching it again", "dir", dir, "err", verr)
	}
	tempPrefix := "." + c.Dir + ".tmp-"
	// We hold the lock, so temporary directories left here are from a
	// fetch that died half way.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, tempPrefix+"*"))
	for _, s := range stale {
		if err := os.RemoveAll(s); err != nil {
			log.Warn("remove stale fetch directory", "dir", s, "err", err)
		}
	}

	start := time.Now()
	log.Info("fetching "+c.Name+" from "+c.From, slices.Concat(c.Attrs, []any{"dir", dir})...)
	work, err := os.MkdirTemp(cacheDir, tempPrefix)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	fetched, err := c.Download(ctx, cacheDir, work)
	if err != nil {
		return "", err
	}
	// An existing dir (a damaged copy) is first renamed aside into work,
	// so dir is never half written.
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, filepath.Join(work, "old")); err != nil {
			return "", fmt.Errorf("move damaged copy aside: %w", err)
		}
	}
	if err := os.Rename(fetched, dir); err != nil {
		return "", fmt.Errorf("move into place: %w", err)
	}
	log.Info("fetched "+c.Name, "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// FileSHA256 returns the hex sha256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
