package sets

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"sync/atomic"
)

// Limits bound what one revision's sets may cost to read, lint and report.
// Set files come from pull requests: without bounds two 15 MiB files made
// a 45 MB report after 700 MB of memory. Anything over a limit is a lint
// error at the file, and that file is not parsed (its target takes no part
// in the diff), so the check fails within seconds.
type Limits struct {
	Files     int   // set files per revision
	FileBytes int64 // bytes per set file (or YAML list file)
	LineBytes int   // bytes per line of a set file
	Entries   int   // entries per set
}

// DefaultLimits are far above any real compat layer: EESSI's largest set
// has about 300 entries in 20 KB, and a repository a few dozen set files.
var DefaultLimits = Limits{Files: 256, FileBytes: 1 << 20, LineBytes: 4096, Entries: 10000}

var limits atomic.Pointer[Limits]

// SetLimits changes the limits LoadRepo applies from now on (the bot's
// config sets them at start); zero fields take DefaultLimits'.
func SetLimits(l Limits) {
	if l.Files <= 0 {
		l.Files = DefaultLimits.Files
	}
	if l.FileBytes <= 0 {
		l.FileBytes = DefaultLimits.FileBytes
	}
	if l.LineBytes <= 0 {
		l.LineBytes = DefaultLimits.LineBytes
	}
	if l.Entries <= 0 {
		l.Entries = DefaultLimits.Entries
	}
	limits.Store(&l)
}

// CurrentLimits are the limits LoadRepo applies.
func CurrentLimits() Limits {
	if l := limits.Load(); l != nil {
		return *l
	}
	return DefaultLimits
}

// Names that become part of build requests, tags and paths: a version, an
// OS and an arch taken from file names (or YAML) of a pull request.
var (
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._]{0,31}$`)
	osRE      = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)
	archRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,31}$`)
)

// checkTargetName says what is wrong with a version and os-arch, "" if
// nothing. osName and arch are both empty for an all-arches set.
func checkTargetName(version, osName, arch string) string {
	switch {
	case !versionRE.MatchString(version):
		return fmt.Sprintf("version %q is not a valid version name (letters, digits, '.', '_', at most 32)", version)
	case osName == "" && arch == "":
		return ""
	case !osRE.MatchString(osName) || !archRE.MatchString(arch):
		return fmt.Sprintf("%q is not a valid os-arch such as linux-x86_64 (os: lower-case letters and digits; arch: lower-case letters, digits, '_', '.' and '-')", osName+"-"+arch)
	}
	return ""
}

// problem records a load-time lint error at line 1 of file.
func (r *Repo) problem(file, code, format string, args ...any) {
	r.Problems = append(r.Problems, Diagnostic{File: file, Line: 1, Col: 1, Severity: SeverityError, Code: code, Message: fmt.Sprintf(format, args...)})
}

// readLimited reads p if it fits l.FileBytes; ok is false (and a problem
// recorded) when it does not, without reading it when its size is known.
func (r *Repo) readLimited(fsys fs.FS, p string, l Limits) (data []byte, ok bool, err error) {
	if fi, err := fs.Stat(fsys, p); err == nil && fi.Size() > l.FileBytes {
		r.problem(p, CodeTooLarge, "%d bytes, more than the limit of %d for a set file; not read", fi.Size(), l.FileBytes)
		return nil, false, nil
	}
	data, err = fs.ReadFile(fsys, p)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(data)) > l.FileBytes {
		r.problem(p, CodeTooLarge, "%d bytes, more than the limit of %d for a set file; not read", len(data), l.FileBytes)
		return nil, false, nil
	}
	return data, true, nil
}

// longLine returns the 1-based number and length of the first line of data
// longer than max, or 0.
func longLine(data []byte, max int) (int, int) {
	for n := 1; len(data) > 0; n++ {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) > max {
			return n, len(line)
		}
	}
	return 0, 0
}
