package ddblocal

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type tarEntry struct {
	name     string
	typ      byte
	body     string
	linkname string
}

func writeTgz(t *testing.T, path string, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.linkname}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUnpackEmulator(t *testing.T) {
	tests := []struct {
		name      string
		entries   []tarEntry
		wantErr   string
		wantFiles []string // relative to dst, slash-separated
	}{
		{
			name: "keeps only emulator files",
			entries: []tarEntry{
				{name: "package/package.json", typ: tar.TypeReg, body: "{}"},
				{name: "package/emulator/sha256", typ: tar.TypeReg, body: "abc"},
				{name: "package/emulator/DynamoDBLocal_lib/", typ: tar.TypeDir},
				{name: "package/emulator/DynamoDBLocal_lib/x.jar", typ: tar.TypeReg, body: "x"},
				{name: "./package/emulator/DynamoDBLocal.jar", typ: tar.TypeReg, body: "jar"},
				{name: "package/emulatorX/evil", typ: tar.TypeReg, body: "no"},
			},
			wantFiles: []string{"DynamoDBLocal.jar", "DynamoDBLocal_lib/x.jar", "sha256"},
		},
		{
			name:    "dot-dot escapes",
			entries: []tarEntry{{name: "package/emulator/../../evil", typ: tar.TypeReg, body: "x"}},
			wantErr: "unsafe path",
		},
		{
			name:    "dot-dot inside",
			entries: []tarEntry{{name: "package/emulator/a/../../../evil", typ: tar.TypeReg, body: "x"}},
			wantErr: "unsafe path",
		},
		{
			name:    "absolute after prefix",
			entries: []tarEntry{{name: "package/emulator//etc/evil", typ: tar.TypeReg, body: "x"}},
			wantErr: "unsafe path",
		},
		{
			name:    "backslash",
			entries: []tarEntry{{name: `package/emulator/..\..\evil`, typ: tar.TypeReg, body: "x"}},
			wantErr: "unsafe path",
		},
		{
			name: "symlink",
			entries: []tarEntry{
				{name: "package/emulator/link", typ: tar.TypeSymlink, linkname: "/etc/passwd"},
			},
			wantErr: "unexpected entry",
		},
		{
			name: "duplicate file",
			entries: []tarEntry{
				{name: "package/emulator/a", typ: tar.TypeReg, body: "1"},
				{name: "package/emulator/a", typ: tar.TypeReg, body: "2"},
			},
			wantErr: "file exists",
		},
		{
			name:    "no emulator",
			entries: []tarEntry{{name: "package/README.md", typ: tar.TypeReg, body: "x"}},
			wantErr: "no files",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tgz := filepath.Join(root, "p.tgz")
			writeTgz(t, tgz, tt.entries)
			dst := filepath.Join(root, "out")
			err := unpackEmulator(tgz, dst)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			// Nothing may land outside dst.
			top, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range top {
				if e.Name() != "p.tgz" && e.Name() != "out" {
					t.Errorf("unpack wrote %s outside its destination", e.Name())
				}
			}
			if tt.wantErr != "" {
				return
			}
			var got []string
			filepath.WalkDir(dst, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dst, path)
					got = append(got, filepath.ToSlash(rel))
				}
				return err
			})
			slices.Sort(got)
			if !slices.Equal(got, tt.wantFiles) {
				t.Errorf("unpacked %v, want %v", got, tt.wantFiles)
			}
		})
	}
}
