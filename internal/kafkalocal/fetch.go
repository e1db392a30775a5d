package kafkalocal

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/postflight/postflight/internal/localjvm"
)

// Version is the Apache Kafka release Fetch resolves (pom.xml pins it).
const Version = "4.4.0"

// pom is the Maven project Fetch resolves; jarSums pins every jar it
// resolves as "sha256  file" lines (sha256sum's format). After changing pom.xml,
// regenerate jarSums from a fresh resolve:
//
//	mvn -C -f pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=/tmp/libs
//	(cd /tmp/libs && sha256sum *) > jars.sha256
//
//go:embed pom.xml
var pom []byte

//go:embed jars.sha256
var jarSums string

const (
	// dirName is Kafka's directory in the cache directory (see
	// localjvm.CachedDir for its lock and temporary directories).
	dirName  = "apache-kafka-" + Version
	libsName = "libs"
	// repoName is the Maven repository Fetch gives mvn, kept in the cache
	// directory so a fetch needs no ~/.m2 and a damaged one can be dropped.
	repoName = "maven-repository"
)

// DefaultCacheDir is where Fetch keeps Kafka unless told otherwise, the same
// directory as DynamoDB Local's: $POSTFLIGHT_CACHE_DIR if set, else
// ~/.cache/postflight.
func DefaultCacheDir() (string, error) { return localjvm.DefaultCacheDir() }

// Fetch makes sure cacheDir/apache-kafka-4.4.0/libs holds exactly the pinned
// jars, each with its pinned sha256, and returns cacheDir/apache-kafka-4.4.0
// (pass it as [Config.Dir]).
//
// A verified cache is returned without touching the network. Otherwise
// (missing, or any jar missing, extra or damaged) Fetch runs `mvn -C
// dependency:copy-dependencies` on the embedded POM into a temporary
// directory in cacheDir, verifies every jar and renames the directory into
// place. If the downloaded jars do not match (a damaged file in Maven's
// repository, which is kept in cacheDir/maven-repository), that repository
// is removed and mvn runs once more before Fetch gives up.
//
// Concurrent callers, in this process or others, serialize on an flock of
// cacheDir/apache-kafka-4.4.0.lock; only the first downloads. A nil log
// discards.
func Fetch(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	return fetcher{log: log, resolve: mvnResolve}.fetch(ctx, cacheDir)
}

// fetcher is Fetch with its Maven call injectable, so tests can count or
// forbid downloads.
type fetcher struct {
	log *slog.Logger
	// resolve copies the POM's runtime jars into libsDir, with repo as
	// Maven's local repository.
	resolve func(ctx context.Context, pomPath, libsDir, repo string) error
}

func (f fetcher) fetch(ctx context.Context, cacheDir string) (string, error) {
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	want, err := parseSums(jarSums)
	if err != nil {
		return "", fmt.Errorf("fetch kafka: jars.sha256: %w", err)
	}
	c := localjvm.CachedDir{
		Name:   "Apache Kafka",
		Dir:    dirName,
		From:   "Maven Central",
		Attrs:  []any{"version", Version, "jars", len(want)},
		Verify: func(dir string) error { return verify(filepath.Join(dir, libsName), want) },
		Download: func(ctx context.Context, cacheDir, work string) (string, error) {
			return f.download(ctx, cacheDir, work, want)
		},
	}
	dir, err := c.Fetch(ctx, cacheDir, f.log)
	if err != nil {
		return "", fmt.Errorf("fetch kafka: %w", err)
	}
	return dir, nil
}

// download resolves the jars into work/apache-kafka-4.4.0/libs with Maven
// and verifies them. If they do not match (a damaged file in Maven's
// repository), it drops that repository and resolves once more.
func (f fetcher) download(ctx context.Context, cacheDir, work string, want map[string]string) (string, error) {
	pomPath := filepath.Join(work, "pom.xml")
	if err := os.WriteFile(pomPath, pom, 0o644); err != nil {
		return "", err
	}
	repo := filepath.Join(cacheDir, repoName)
	staged := filepath.Join(work, dirName)
	libs := filepath.Join(staged, libsName)
	for attempt := 1; ; attempt++ {
		if err := f.resolve(ctx, pomPath, libs, repo); err != nil {
			return "", err
		}
		err := verify(libs, want)
		if err == nil {
			return staged, nil
		}
		if attempt == 2 {
			return "", fmt.Errorf("downloaded jars: %w", err)
		}
		f.log.Warn("downloaded Kafka jars do not match their pinned hashes; "+
			"dropping Maven's repository and resolving again", "repo", repo, "err", err)
		if err := os.RemoveAll(repo); err != nil {
			return "", err
		}
		if err := os.RemoveAll(libs); err != nil {
			return "", err
		}
	}
}

// parseSums reads sha256sum output: "<hex>  <file>" per line.
func parseSums(s string) (map[string]string, error) {
	sums := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || name == "" || strings.ContainsAny(name, "/\\") {
			return nil, fmt.Errorf("bad line %q", line)
		}
		sums[name] = sum
	}
	if len(sums) == 0 {
		return nil, errors.New("no jars")
	}
	return sums, nil
}

// verify checks that libs holds exactly the jars of want, each with its
// hash. A missing libs gives an error wrapping os.ErrNotExist.
func verify(libs string, want map[string]string) error {
	entries, err := os.ReadDir(libs)
	if err != nil {
		return err
	}
	var extra []string
	seen := 0
	for _, e := range entries {
		sum, ok := want[e.Name()]
		if !ok {
			extra = append(extra, e.Name())
			continue
		}
		seen++
		got, err := localjvm.FileSHA256(filepath.Join(libs, e.Name()))
		if err != nil {
			return err
		}
		if got != sum {
			return fmt.Errorf("%s has sha256 %s, want %s", e.Name(), got, sum)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("unpinned files in %s: %s", libs, strings.Join(extra, ", "))
	}
	if seen != len(want) {
		var missing []string
		for name := range want {
			if _, err := os.Stat(filepath.Join(libs, name)); err != nil {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		return fmt.Errorf("missing from %s: %s", libs, strings.Join(missing, ", "))
	}
	return nil
}

// mvnResolve runs `mvn dependency:copy-dependencies` on the POM. -C makes a
// checksum mismatch against Maven Central's .sha1 files fatal.
func mvnResolve(ctx context.Context, pomPath, libsDir, repo string) error {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return errors.New("mvn not found on PATH: Apache Kafka is resolved from Maven Central with Maven; " +
			"install it (Debian/Ubuntu: apt-get install maven)")
	}
	cmd := exec.CommandContext(ctx, mvn, "--batch-mode", "--quiet", "--strict-checksums",
		"-Dstyle.color=never",
		"-f", pomPath,
		"-Dmaven.repo.local="+repo,
		"dependency:copy-dependencies",
		"-DincludeScope=runtime",
		"-DoutputDirectory="+libsDir)
	cmd.Dir = filepath.Dir(pomPath)
	if err := localjvm.Run(cmd); err != nil {
		return fmt.Errorf("mvn dependency:copy-dependencies (Kafka %s from Maven Central): %w", Version, err)
	}
	return nil
}
