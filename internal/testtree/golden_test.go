package testtree

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for the testing.TB of a test that uses Golden, so that
// its failures can be observed instead of failing this test.
type recorder struct {
	testing.TB
	errors []string
}

type fatal struct{}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	panic(fatal{})
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func golden(name, got string, update bool) (errs []string) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil && p != (fatal{}) {
			panic(p)
		}
		errs = r.errors
	}()
	Golden(r, name, got, update)
	return r.errors
}

func TestGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	if errs := golden("out.txt", "x\n", false); len(errs) != 1 || !strings.Contains(errs[0], "-update creates it") {
		t.Errorf("missing golden file: %q", errs)
	}
	if errs := golden("out.txt", "x\n", true); len(errs) != 0 {
		t.Errorf("-update: %q", errs)
	}
	if data, err := os.ReadFile(filepath.Join("testdata", "out.txt")); err != nil || string(data) != "x\n" {
		t.Errorf("golden file after -update = %q, %v", data, err)
	}
	if errs := golden("out.txt", "x\n", false); len(errs) != 0 {
		t.Errorf("same output: %q", errs)
	}
	errs := golden("out.txt", "y\n", false)
	if len(errs) != 1 || !strings.Contains(errs[0], "testdata/out.txt differs") || !strings.Contains(errs[0], "--- got:\ny\n") || !strings.Contains(errs[0], "--- want:\nx\n") {
		t.Errorf("different output: %q", errs)
	}
}
