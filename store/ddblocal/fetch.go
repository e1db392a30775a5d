package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

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

	// dirName is the emulator's directory in the cache directory (see
	// localjvm.CachedDir for its lock and temporary directories).
	dirName = PackageName + "-" + PackageVersion

	// maxUnpacked bounds what unpacking may write (the emulator is ~64 MB).
	maxUnpacked = 1 << 30
)

// DefaultCacheDir is where Fetch keeps DynamoDB Local unless told otherwise:
// $POSTFLIGHT_CACHE_DIR if set, else <user cache dir>/postflight
// (~/.cache/postflight on Linux).
func DefaultCacheDir() (string, error) { return localjvm.DefaultCacheDir() }

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
	c := localjvm.CachedDir{
		Name:     "DynamoDB Local",
		Dir:      dirName,
		From:     "npm",
		Attrs:    []any{"package", PackageName + "@" + PackageVersion},
		Verify:   verify,
		Download: f.download,
	}
	dir, err := c.Fetch(ctx, cacheDir, f.log)
	if err != nil {
		return "", fmt.Errorf("fetch dynamodb local: %w", err)
	}
	return dir, nil
}

// download packs the npm package into work, unpacks its emulator/ there and
// verifies it.
func (f fetcher) download(ctx context.Context, _, work string) (string, error) {
	if err := f.pack(ctx, work); err != nil {
		return "", err
	}
	tgzs, err := filepath.Glob(filepath.Join(work, "*.tgz"))
	if err != nil || len(tgzs) != 1 {
		return "", fmt.Errorf("npm pack wrote %d .tgz files to %s, want 1", len(tgzs), work)
	}
	unpacked := filepath.Join(work, "emulator")
	if err := unpackEmulator(tgzs[0], unpacked); err != nil {
		return "", fmt.Errorf("unpack %s: %w", filepath.Base(tgzs[0]), err)
	}
	if err := verify(unpacked); err != nil {
		return "", fmt.Errorf("downloaded package: %w", err)
	}
	return unpacked, nil
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
	got, err := localjvm.FileSHA256(filepath.Join(dir, jarName))
	if err != nil {
		return err
	}
	if got != JarSHA256 {
		return fmt.Errorf("%s has sha256 %s, want %s", jarName, got, JarSHA256)
	}
	return nil
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
	// npm may start helpers: Run kills them with it when ctx ends.
	if err := localjvm.Run(cmd); err != nil {
		return fmt.Errorf("npm pack %s@%s: %w", PackageName, PackageVersion, err)
	}
	return nil
}
