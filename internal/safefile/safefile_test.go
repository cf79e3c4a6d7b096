package safefile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "runs", "r1"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "runs", "r1", "build.log"), []byte("log"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret"), []byte("outside"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "compatbot.db"), []byte("inside"), 0o600))
	must(os.MkdirAll(filepath.Join(dir, "runs", "r2"), 0o755))
	must(os.Symlink(filepath.Join(base, "secret"), filepath.Join(dir, "runs", "r2", "build.log")))
	must(os.MkdirAll(filepath.Join(dir, "runs", "r3"), 0o755))
	must(os.Symlink("../../compatbot.db", filepath.Join(dir, "runs", "r3", "build.log")))
	must(os.Symlink(base, filepath.Join(dir, "runs", "r4")))
	must(os.Symlink(filepath.Join(dir, "runs", "r1"), filepath.Join(dir, "runs", "r5")))
	must(os.MkdirAll(filepath.Join(dir, "runs", "r6", "build.log"), 0o755))
	tests := []struct {
		name, rel string
		want      string // content, "" for refused
		link      bool
	}{
		{"regular file", "runs/r1/build.log", "log", false},
		{"link out of the directory", "runs/r2/build.log", "", true},
		{"link inside the directory", "runs/r3/build.log", "", true},
		{"linked directory out", "runs/r4/secret", "", true},
		{"linked directory inside", "runs/r5/build.log", "", true},
		{"a directory", "runs/r6/build.log", "", false},
		{"dot-dot", "runs/../../secret", "", false},
		{"absolute", filepath.Join(base, "secret"), "", false},
		{"missing", "runs/r9/build.log", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Open(dir, tc.rel)
			if tc.want == "" {
				if err == nil {
					f.Close()
					t.Fatalf("Open(%q) succeeded, want refused", tc.rel)
				}
				if tc.link && !errors.Is(err, ErrLink) {
					t.Errorf("Open(%q) = %v, want ErrLink", tc.rel, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			if string(b) != tc.want {
				t.Errorf("read %q, want %q", b, tc.want)
			}
		})
	}
}
