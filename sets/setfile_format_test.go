package sets

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/setfile_format.in")
	if err != nil {
		t.Fatal(err)
	}
	sf := ParseSetFile("f", in)
	out := sf.Format()
	golden(t, "setfile_format.golden", out)
	checkRoundTrip(t, in)
	var reasons []string
	for _, e := range sf.Entries {
		reasons = append(reasons, e.Token+" = "+e.Reason)
	}
	want := []string{
		"=app-admin/lmod-8.7.37::eessi = Lmod provides the module command",
		"dev-lua/luaposix = Lmod needs POSIX bindings",
		"sys-devel/gcc = #   double hash comment  and a blank comment line",
		"sys-devel/binutils = trailing hashes",
		"grouped/pkg = #   double hash comment  and a blank comment line",
		"@eessi-extra = a comment right after entries starts a new group",
		"trailing/blank-separated = ",
	}
	if d := cmp.Diff(want, reasons); d != "" {
		t.Errorf("reasons (-want +got):\n%s", d)
	}
	if len(sf.Detached) != 2 || sf.Detached[0].Before != 0 || sf.Detached[1].Before != 7 || sf.Detached[1].Line != 17 {
		t.Errorf("detached comments: %+v", sf.Detached)
	}
}

type entryShape struct {
	Token, Reason, Comment, SetRef, Atom string
	Block                                []string
	Group                                int
	Bad                                  bool
}

func shape(sf *SetFile) ([]entryShape, []CommentBlock) {
	var es []entryShape
	for _, e := range sf.Entries {
		s := entryShape{Token: e.Token, Reason: e.Reason, Comment: e.Comment, SetRef: e.SetRef, Block: e.Block, Group: e.Group}
		if e.Atom != nil {
			s.Atom = e.Atom.String()
		}
		// Text after a token is an error Format drops; other errors stay.
		if e.Err != nil && !strings.HasPrefix(e.Err.Error(), "unexpected ") {
			s.Bad = true
		}
		es = append(es, s)
	}
	var ds []CommentBlock
	for _, d := range sf.Detached {
		ds = append(ds, CommentBlock{Before: d.Before, Lines: d.Lines})
	}
	return es, ds
}

// checkRoundTrip: parse -> Format -> parse keeps every entry, reason and
// comment, and Format is a fixed point.
func checkRoundTrip(t *testing.T, in []byte) {
	t.Helper()
	sf := ParseSetFile("f", in)
	out := sf.Format()
	sf2 := ParseSetFile("f", out)
	e1, d1 := shape(sf)
	e2, d2 := shape(sf2)
	if d := cmp.Diff(e1, e2); d != "" {
		t.Fatalf("entries change on parse -> print -> parse of %q (printed %q):\n%s", in, out, d)
	}
	if d := cmp.Diff(d1, d2); d != "" {
		t.Fatalf("comments change on parse -> print -> parse of %q (printed %q):\n%s", in, out, d)
	}
	if out2 := sf2.Format(); string(out2) != string(out) {
		t.Fatalf("Format not stable for %q:\n%q\n%q", in, out, out2)
	}
}

func FuzzParseSetFile(f *testing.F) {
	for _, s := range []string{
		"", "\n", "#\n", "a/b\n", "# r\na/b\nc/d # x\n\n@world\n",
		"# h\n\n# g\n=a/b-1::r # t\n# n\nx\n\n# tail\n",
		"  >=sys-libs/glibc-2.41:2.2/2.2=[a,-b(+)] junk\n",
		"a/b ## # c\n#  # d\n\x85e/f\n", "@bad/set\n\r\n\t# x\r\n",
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("testdata/setfile_format.in"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sf := ParseSetFile("f", in)
		_ = LintSetFile(sf)
		checkRoundTrip(t, in)
	})
}
