package ddblocal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/postflight/postflight/internal/localjvm"
)

// The pinned npm package and the hashes Fetch checks (see the package doc for
// why there are two).
const (
	PackageName    = "amplify-dynamodb-simulator"
	PackageVersion = "2.9.30"

	// UpstreamTarballSHA256 is the content of the package's emulator/sha256
	// file: the sha256 of AWS's original DynamoDB Local tarball.
	UpstreamTarballSHA256 = "55b425a9a42cfc728436eaf0e4ae64d688b64d177c99c4f4c4d7e3dbb3ac6c09"
	// JarSHA256 is the sha256 of emulator/DynamoDBLocal.jar (DynamoDB Local 1.25.1).
	JarSHA256 = "454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"
)

const (
	jarName    = "DynamoDBLocal.jar"
	libName    = "DynamoDBLocal_lib"
	sha256Name = "sha256"

	dirName    = PackageName + "-" + PackageVersion
	lockName   = dirName + ".lock"
	tempPrefix = "." + dirName + ".tmp-"

	// maxUnpacked bounds what unpacking may write (the emulator is ~64 MB).
	maxUnpacked = 1 << 30
)

// DefaultCacheDir is where Fetch keeps DynamoDB Local unless told otherwise:
// $POSTFLIGHT_CACHE_DIR if set, else <user cache dir>/postflight
// (~/.cache/postflight on Linux).
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

// Fetch makes sure cacheDir/amplify-dynamodb-simulator-2.9.30 holds a
// verified DynamoDB Local (DynamoDBLocal.jar and DynamoDBLocal_lib/) and
// returns that directory, to pass as [Config.Dir].
//
// If the directory is there and its hashes match, Fetch returns without
// touching the network. Otherwise (missing, or corrupted) it runs `npm pack`,
// unpacks emulator/ into a temporary directory inside cacheDir, verifies both
// pinned hashes and renames it into place, replacing a corrupted copy.
//
// Fetch is safe to call from several goroutines and processes at once: they
// serialize on an flock of cacheDir/amplify-dynamodb-simulator-2.9.30.lock,
// and only the first one downloads. A nil log discards.
func Fetch(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	return fetcher{log: log, pack: npmPack}.fetch(ctx, cacheDir)
}

// fetcher is Fetch with its npm call injectable, so tests can count or forbid
// downloads.
type fetcher struct {
	log *slog.Logger
	// pack writes the package's .tgz into destDir.
	pack func(ctx context.Context, destDir string) error
}

func (f fetcher) fetch(ctx context.Context, cacheDir string) (string, error) {
	log := f.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cacheDir == "" {
		return "", errors.New("fetch dynamodb local: empty cache dir")
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	unlock, err := localjvm.LockFile(ctx, filepath.Join(cacheDir, lockName))
	if err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	defer unlock()

	dir := filepath.Join(cacheDir, dirName)
	verr := verify(dir)
	if verr == nil {
		return dir, nil
	}
	if !errors.Is(verr, os.ErrNotExist) {
		log.Warn("cached DynamoDB Local is damaged; fetching it again", "dir", dir, "err", verr)
	}
	// We hold the lock, so temporary directories left here are from a fetch
	// that died half way.
	removeStale(cacheDir, log)

	start := time.Now()
	log.Info("fetching DynamoDB Local from npm", "package", PackageName+"@"+PackageVersion, "dir", dir)
	work, err := os.MkdirTemp(cacheDir, tempPrefix)
	if err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	defer os.RemoveAll(work)

	if err := f.pack(ctx, work); err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	tgzs, err := filepath.Glob(filepath.Join(work, "*.tgz"))
	if err != nil || len(tgzs) != 1 {
		return "", fmt.Errorf("fetch dynamodb local: npm pack wrote %d .tgz files to %s, want 1", len(tgzs), work)
	}
	unpacked := filepath.Join(work, "emulator")
	if err := unpackEmulator(tgzs[0], unpacked); err != nil {
		return "", fmt.Errorf("fetch dynamodb local: unpack %s: %w", filepath.Base(tgzs[0]), err)
	}
	if err := verify(unpacked); err != nil {
		return "", fmt.Errorf("fetch dynamodb local: downloaded package: %w", err)
	}
	if err := replaceDir(unpacked, dir, work); err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	log.Info("fetched DynamoDB Local", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// verify checks that dir holds the pinned emulator: the sha256 file names the
// pinned upstream tarball, the jar has the pinned hash, and the lib directory
// exists. A missing dir gives an error that wraps os.ErrNotExist.
func verify(dir string) error {
	st, err := os.Stat(filepath.Join(dir, libName))
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", filepath.Join(dir, libName))
	}
	upstream, err := os.ReadFile(filepath.Join(dir, sha256Name))
	if err != nil {
		return err
	}
	if got := string(bytes.TrimSpace(upstream)); got != UpstreamTarballSHA256 {
		return fmt.Errorf("emulator/sha256 names upstream tarball %q, want %s", got, UpstreamTarballSHA256)
	}
	got, err := fileSHA256(filepath.Join(dir, jarName))
	if err != nil {
		return err
	}
	if got != JarSHA256 {
		return fmt.Errorf("%s has sha256 %s, want %s", jarName, got, JarSHA256)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
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

// replaceDir renames src to dst. An existing dst (a damaged copy) is first
// renamed aside into work, so dst is never half written.
func replaceDir(src, dst, work string) error {
	if _, err := os.Stat(dst); err == nil {
		if err := os.Rename(dst, filepath.Join(work, "old")); err != nil {
			return fmt.Errorf("move damaged copy aside: %w", err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	return nil
}

func removeStale(cacheDir string, log *slog.Logger) {
	stale, _ := filepath.Glob(filepath.Join(cacheDir, tempPrefix+"*"))
	for _, s := range stale {
		if err := os.RemoveAll(s); err != nil {
			log.Warn("remove stale fetch directory", "dir", s, "err", err)
		}
	}
}

// npmPack runs `npm pack amplify-dynamodb-simulator@2.9.30` into destDir.
func npmPack(ctx context.Context, destDir string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm not found on PATH: DynamoDB Local is fetched with `npm pack`; " +
			"install Node.js and npm (Debian/Ubuntu: apt-get install nodejs npm)")
	}
	cmd := exec.CommandContext(ctx, npm, "pack", PackageName+"@"+PackageVersion,
		"--pack-destination", destDir, "--ignore-scripts")
	cmd.Dir = destDir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false")
	// npm may start helpers; kill them with it when ctx ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm pack %s@%s: %w: %s", PackageName, PackageVersion, err, lastBytes(out.Bytes(), 2048))
	}
	return nil
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
