package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RemoteTx is a transaction whose tree is on another host (a cvmfs target
// with publisher_host): Dir() names a path there, which this process
// cannot write. Changes are carried over as a tar stream instead.
type RemoteTx interface {
	Tx
	// Unpack changes the remote tree: the paths in remove (relative,
	// slash-separated) are deleted with everything under them, the
	// directories in clear are emptied ("." empties the whole tree), then
	// the tarball read from archive is unpacked over it with modes and
	// mtimes. archive may be nil (deletions only).
	Unpack(ctx context.Context, archive io.Reader, remove, clear []string) error
}

func sshArgv(cfg TargetConfig) []string {
	// BatchMode: never prompt (a deploy has no terminal); a missing key or
	// unknown host key fails with ssh's message instead.
	argv := []string{"ssh", "-o", "BatchMode=yes"}
	if cfg.SSHConfig != "" {
		argv = append(argv, "-F", cfg.SSHConfig)
	}
	return append(argv, "--", cfg.PublisherHost)
}

// shellQuote quotes s for a POSIX shell: ssh passes the remote command as
// one string to the remote user's shell, which would split it at spaces,
// cut it at "#" and expand $, `, * and quotes. Inside single quotes
// nothing is special but the single quote itself, written '\”.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellLine is words as one command line for a POSIX shell.
func shellLine(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

type remoteTx struct{ *cvmfsTx }

// Unpack implements RemoteTx with the remote host's own tools (head,
// xargs, rm, find, tar): nothing of compatbot needs to be installed there.
// It is one ssh session: stdin carries the NUL-separated paths to remove,
// then those to clear, then the tarball, and the remote command splits it
// with `head -c <length>`, which reads exactly that many bytes. No path,
// however odd, meets a shell or the command line's length limit; each is
// prefixed with "./" so none is read as an option.
func (t *remoteTx) Unpack(ctx context.Context, archive io.Reader, remove, clear []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrNoTransaction
	}
	// cd first: a transaction whose tree is missing fails here rather
	// than deleting relative to the login directory.
	words := []string{"cd", t.dir}
	var in []io.Reader
	for _, l := range []struct {
		paths []string
		words []string
	}{
		{remove, []string{"xargs", "-0", "-r", "rm", "-rf", "--"}},
		{clear, []string{"xargs", "-0", "-r", "-I{}", "find", "{}", "-mindepth", "1", "-delete"}},
	} {
		if len(l.paths) == 0 {
			continue
		}
		var b bytes.Buffer
		for _, p := range l.paths {
			c, err := CleanPath(p)
			if err != nil {
				return err
			}
			if c == "" {
				c = "."
			}
			b.WriteString("./" + c + "\x00")
		}
		words = append(words, "&&", "head", "-c", strconv.Itoa(b.Len()), "|")
		words = append(words, l.words...)
		in = append(in, &b)
	}
	if archive != nil {
		words = append(words, "&&", "tar", "-x", "-p", "-f", "-")
		in = append(in, archive)
	}
	_, err := t.c.execRemote(ctx, io.MultiReader(in...), words)
	return err
}

// execRemote runs words on the publisher host; "&&" and "|" stay
// operators, every other word is quoted.
func (c *Cvmfs) execRemote(ctx context.Context, stdin io.Reader, words []string) (string, error) {
	var parts []string
	for _, w := range words {
		if w == "&&" || w == "|" {
			parts = append(parts, w)
		} else {
			parts = append(parts, shellQuote(w))
		}
	}
	argv := append(append([]string{}, c.ssh...), strings.Join(parts, " "))
	return c.execArgv(ctx, stdin, words, argv)
}

// TarDir writes the tree at dir as a tarball (directories, files and
// symlinks with their modes and mtimes; ownership root), for RemoteTx.Unpack.
func TarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !fi.IsDir() && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a file, directory or symlink", p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
