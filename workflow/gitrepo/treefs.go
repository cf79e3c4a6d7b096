package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TreeFS reads the tree of the commit ref names into memory and returns it as
// an fs.FS rooted at the repository root. It lists the tree with one
// `git ls-tree -r -z` and reads every blob through one `git cat-file --batch`
// process, so the cost is two processes whatever the number of files, and no
// work tree is needed (bare repositories work).
//
// Regular and executable files are included; symlinks and submodules are
// left out, because a set file reached through a link could point outside the
// tree the PR shows.
//
// Trees come from pull requests, so memory is bounded: a file larger than
// MaxFileSize is listed (Stat and ReadDir see it) but not read, and opening it
// fails with ErrTooLarge; a tree whose other files add up to more than
// MaxTreeSize is refused.
func TreeFS(ctx context.Context, gitDir, ref string) (fs.FS, error) {
	_, fsys, err := CommitTree(ctx, gitDir, ref)
	return fsys, err
}

// CommitTree is TreeFS that also returns the full SHA of the commit ref
// names, for callers that need both without resolving ref twice.
func CommitTree(ctx context.Context, gitDir, ref string) (string, fs.FS, error) {
	sha, err := ResolveCommit(ctx, gitDir, ref)
	if err != nil {
		return "", nil, err
	}
	fsys, err := treeOf(ctx, gitDir, sha)
	if err != nil {
		return "", nil, err
	}
	return sha, fsys, nil
}

// treeOf reads the tree of commit sha (already resolved).
func treeOf(ctx context.Context, gitDir, sha string) (fs.FS, error) {
	out, err := cmd{gitDir: gitDir, args: []string{"ls-tree", "-r", "-z", "-l", "--full-tree", sha}}.run(ctx)
	if err != nil {
		return nil, err
	}
	type blob struct {
		name, sha string
		mode      fs.FileMode
	}
	var blobs []blob
	m := newMemFS()
	var total int64
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, name, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 {
			return nil, fmt.Errorf("git ls-tree %s: unexpected record %q", sha, rec)
		}
		var mode fs.FileMode
		switch f[0] {
		case "100644":
			mode = 0o644
		case "100755":
			mode = 0o755
		default: // 120000 symlink, 160000 submodule
			continue
		}
		if !fs.ValidPath(name) {
			return nil, fmt.Errorf("git ls-tree %s: invalid path %q", sha, name)
		}
		size, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("git ls-tree %s: bad size in %q", sha, rec)
		}
		if size > MaxFileSize {
			m.addLarge(name, size, mode)
			continue
		}
		if total += size; total > MaxTreeSize {
			return nil, fmt.Errorf("%s: tree of %s holds more than %d bytes of files under %d bytes each; refusing to read it", gitDir, sha, MaxTreeSize, MaxFileSize)
		}
		blobs = append(blobs, blob{name: name, sha: f[2], mode: mode})
	}

	if len(blobs) == 0 {
		m.finish()
		return m, nil
	}
	c := cmd{gitDir: gitDir, args: []string{"cat-file", "--batch"}}
	x := c.command(ctx)
	stdin, err := x.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := x.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	x.Stderr = &stderr
	if err := x.Start(); err != nil {
		return nil, c.wrap(err, "")
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for _, b := range blobs {
			w.WriteString(b.sha)
			w.WriteByte('\n')
		}
		w.Flush()
		stdin.Close()
	}()
	r := bufio.NewReaderSize(stdout, 64<<10)
	var readErr error
	for _, b := range blobs {
		data, err := readBatchObject(r, b.sha)
		if err != nil {
			readErr = fmt.Errorf("git cat-file --batch: %s: %w", b.name, err)
			break
		}
		m.add(b.name, data, b.mode)
	}
	if readErr != nil {
		io.Copy(io.Discard, r)
	}
	if err := x.Wait(); err != nil {
		return nil, c.wrap(err, stderr.String())
	}
	if readErr != nil {
		return nil, readErr
	}
	m.finish()
	return m, nil
}

// Limits of TreeFS; variables so a deployment with unusual repositories can
// raise them.
var (
	MaxFileSize int64 = 16 << 20
	MaxTreeSize int64 = 256 << 20
)

// ErrTooLarge is returned when opening a file over MaxFileSize.
var ErrTooLarge = errors.New("file larger than gitrepo.MaxFileSize, not read")

// readBatchObject reads one "<sha> <type> <size>\n<data>\n" answer.
func readBatchObject(r *bufio.Reader, want string) ([]byte, error) {
	hdr, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	f := strings.Fields(hdr)
	if len(f) == 2 && f[1] == "missing" {
		return nil, fmt.Errorf("object %s missing", want)
	}
	if len(f) != 3 || f[0] != want || f[1] != "blob" {
		return nil, fmt.Errorf("unexpected header %q for %s", strings.TrimSpace(hdr), want)
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("bad size in header %q", strings.TrimSpace(hdr))
	}
	data := make([]byte, size+1)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("reading %d bytes: %w", size, err)
	}
	if data[size] != '\n' {
		return nil, errors.New("object not terminated by newline")
	}
	return data[:size:size], nil
}

// memFS is a read-only in-memory tree: the files of one commit.
type memFS struct {
	files map[string]*memFile
	dirs  map[string][]fs.DirEntry
}

type memFile struct {
	name  string
	data  []byte
	mode  fs.FileMode
	large int64 // size of a file over MaxFileSize, whose data is not read
}

func newMemFS() *memFS {
	return &memFS{files: map[string]*memFile{}, dirs: map[string][]fs.DirEntry{".": nil}}
}

func (m *memFS) addLarge(name string, size int64, mode fs.FileMode) {
	m.addFile(name, &memFile{name: path.Base(name), mode: mode, large: size})
}

func (m *memFS) add(name string, data []byte, mode fs.FileMode) {
	m.addFile(name, &memFile{name: path.Base(name), data: data, mode: mode})
}

func (m *memFS) addFile(name string, f *memFile) {
	m.files[name] = f
	child := fs.DirEntry(fs.FileInfoToDirEntry(f.info()))
	for dir := path.Dir(name); ; dir = path.Dir(dir) {
		_, seen := m.dirs[dir]
		m.dirs[dir] = append(m.dirs[dir], child)
		if seen || dir == "." {
			break
		}
		child = fs.FileInfoToDirEntry(dirInfo(path.Base(dir)))
	}
}

func (m *memFS) finish() {
	for _, ents := range m.dirs {
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	}
}

func (m *memFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if f, ok := m.files[name]; ok {
		if f.large > 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: ErrTooLarge}
		}
		return &openFile{memFile: f, r: bytes.NewReader(f.data)}, nil
	}
	if ents, ok := m.dirs[name]; ok {
		return &openDir{name: path.Base(name), ents: ents}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	if f, ok := m.files[name]; ok {
		if f.large > 0 {
			return nil, &fs.PathError{Op: "readfile", Path: name, Err: ErrTooLarge}
		}
		return bytes.Clone(f.data), nil
	}
	if _, ok := m.dirs[name]; ok {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
}

func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	ents, ok := m.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return append([]fs.DirEntry(nil), ents...), nil
}

func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if f, ok := m.files[name]; ok {
		return f.info(), nil
	}
	if _, ok := m.dirs[name]; ok {
		return dirInfo(path.Base(name)), nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

func (f *memFile) info() fs.FileInfo {
	size := int64(len(f.data))
	if f.large > 0 {
		size = f.large
	}
	return fileInfo{name: f.name, size: size, mode: f.mode}
}

func dirInfo(name string) fs.FileInfo { return fileInfo{name: name, mode: fs.ModeDir | 0o755} }

type openFile struct {
	*memFile
	r *bytes.Reader
}

func (f *openFile) Stat() (fs.FileInfo, error) { return f.info(), nil }
func (f *openFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *openFile) Seek(off int64, whence int) (int64, error) {
	return f.r.Seek(off, whence)
}
func (f *openFile) ReadAt(b []byte, off int64) (int, error) { return f.r.ReadAt(b, off) }
func (f *openFile) Close() error                            { return nil }

type openDir struct {
	name string
	ents []fs.DirEntry
	off  int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return dirInfo(d.name), nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *openDir) Close() error { return nil }
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return append([]fs.DirEntry(nil), rest...), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return append([]fs.DirEntry(nil), rest[:n]...), nil
}
