package ddblocal

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// emulatorPrefix is the part of the npm tarball we keep.
const emulatorPrefix = "package/emulator/"

// unpackEmulator extracts the regular files under package/emulator/ of the
// gzipped tar at tgz into dst (which must not exist yet), dropping the
// prefix. Everything else is skipped. An entry whose name would escape dst,
// or a link or device under emulator/, is an error: the package has neither.
func unpackEmulator(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var total int64
	files := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		// Tar names use forward slashes; some writers prefix "./".
		name := strings.TrimPrefix(hdr.Name, "./")
		if !strings.HasPrefix(name, emulatorPrefix) {
			continue
		}
		rel := strings.TrimPrefix(name, emulatorPrefix)
		if rel == "" || strings.Contains(rel, `\`) || !filepath.IsLocal(rel) || path.Clean(rel) != strings.TrimSuffix(rel, "/") {
			return fmt.Errorf("unsafe path %q in package", hdr.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			total += hdr.Size
			if total > maxUnpacked {
				return fmt.Errorf("package unpacks to more than %d bytes", maxUnpacked)
			}
			if err := writeFile(target, tr, hdr); err != nil {
				return err
			}
			files++
		default:
			return fmt.Errorf("unexpected entry %q of type %q in package", hdr.Name, hdr.Typeflag)
		}
	}
	if files == 0 {
		return fmt.Errorf("no files under %s in package", emulatorPrefix)
	}
	return nil
}

func writeFile(target string, r io.Reader, hdr *tar.Header) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	// O_EXCL: a duplicate entry is as suspicious as a traversal.
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(out, r, hdr.Size); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", hdr.Name, err)
	}
	return out.Close()
}
