package testtree

import (
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the golden file testdata/name of the package
// under test. With update (the package's -update flag) it rewrites the file
// first, creating testdata/ if needed, so a run with -update passes and
// leaves the new output to review in the diff.
func Golden(t testing.TB, name, got string, update bool) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", p, got, want)
	}
}
