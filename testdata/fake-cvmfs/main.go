// Command cvmfs_server is a TEST DOUBLE of CernVM-FS's cvmfs_server, for
// compatbot's tests: the real one needs a stratum-0 with its own mounts,
// Apache and keys, which cannot run here. It implements the subcommands
// compatbot uses, with the same arguments, exit statuses and output
// formats:
//
//	mkfs -o <owner> <repo>                      (test setup only)
//	transaction <repo>[/<path>]                 exit 17 if one is open
//	publish [-a <tag>] [-m <message>] <repo>
//	abort -f <repo>
//	tag -l -x <repo>                            "<name> <hash> <size> <revision> <timestamp> <channel> <description>"
//	rollback -t <tag> -f <repo>
//	diff -m [-i] -s <tag> -d <tag> <repo>       "A|R|M[flags] <F|D|S> </path> [+-size]"
//	ingest -t - -b <base> <repo>                tar on stdin, own transaction
//
// State lives under $FAKE_CVMFS_ROOT: the mounted tree in cvmfs/<repo>
// (writable while a transaction is open, like the real union mount),
// spool/<repo>/in_transaction.lock as in /var/spool/cvmfs, and snapshots
// plus the tag database in srv/<repo>. Snapshots are full copies: this is
// a double, not a content-addressed store.
package main

import (
	"archive/tar"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

type tag struct {
	Name        string `json:"name"`
	Hash        string `json:"hash"`
	Size        int64  `json:"size"`
	Revision    int    `json:"revision"`
	Timestamp   int64  `json:"timestamp"`
	Description string `json:"description"`
}

type db struct {
	Head int   `json:"head"`
	Tags []tag `json:"tags"`
}

var root string

func main() {
	root = os.Getenv("FAKE_CVMFS_ROOT")
	if root == "" {
		die(1, "FAKE_CVMFS_ROOT is not set")
	}
	if len(os.Args) < 2 {
		die(1, "usage: cvmfs_server <command> ...")
	}
	cmd, args := os.Args[1], os.Args[2:]
	opts, pos := parseFlags(args, map[string]bool{"a": true, "m": true, "t": true, "s": true, "d": true, "b": true, "o": true})
	if len(pos) != 1 {
		die(1, "%s: expected exactly one repository name, got %q", cmd, pos)
	}
	repo, sub, _ := strings.Cut(pos[0], "/")
	if cmd != "mkfs" {
		if _, err := os.Stat(srv(repo)); err != nil {
			die(1, "The repository %s does not exist", repo)
		}
	}
	switch cmd {
	case "mkfs":
		mkfs(repo)
	case "transaction":
		transaction(repo, sub)
	case "publish":
		publish(repo, opts["a"], opts["m"])
	case "abort":
		if !has(opts, "f") {
			die(1, "abort without -f needs an interactive confirmation")
		}
		abort(repo)
	case "tag":
		if !has(opts, "l") || !has(opts, "x") {
			die(1, "tag: only -l -x is implemented by this test double")
		}
		listTags(repo)
	case "rollback":
		if !has(opts, "f") {
			die(1, "rollback without -f needs an interactive confirmation")
		}
		rollback(repo, opts["t"])
	case "diff":
		diff(repo, opts["s"], opts["d"])
	case "ingest":
		if opts["t"] != "-" {
			die(1, "ingest: only -t - (tar on stdin) is implemented by this test double")
		}
		ingest(repo, opts["b"])
	default:
		die(1, "Unknown command: %s", cmd)
	}
}

func has(opts map[string]string, k string) bool { _, ok := opts[k]; return ok }

func parseFlags(args []string, withValue map[string]bool) (map[string]string, []string) {
	opts := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) >= 2 && a[0] == '-' {
			k := a[1:]
			if withValue[k] {
				if i+1 >= len(args) {
					die(1, "option -%s requires an argument", k)
				}
				opts[k] = args[i+1]
				i++
			} else {
				opts[k] = ""
			}
			continue
		}
		pos = append(pos, a)
	}
	return opts, pos
}

func die(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(code)
}

func mnt(repo string) string   { return filepath.Join(root, "cvmfs", repo) }
func spool(repo string) string { return filepath.Join(root, "spool", repo) }
func srv(repo string) string   { return filepath.Join(root, "srv", repo) }
func lockFile(repo string) string {
	return filepath.Join(spool(repo), "in_transaction.lock")
}
func snap(repo string, rev int) string {
	return filepath.Join(srv(repo), "data", strconv.Itoa(rev))
}

func load(repo string) db {
	var d db
	b, err := os.ReadFile(filepath.Join(srv(repo), "tags.json"))
	if err != nil {
		die(1, "%v", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		die(1, "%v", err)
	}
	return d
}

func save(repo string, d db) {
	b, _ := json.Marshal(d)
	tmp := filepath.Join(srv(repo), "tags.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		die(1, "%v", err)
	}
	if err := os.Rename(tmp, filepath.Join(srv(repo), "tags.json")); err != nil {
		die(1, "%v", err)
	}
}

func inTransaction(repo string) bool {
	_, err := os.Stat(lockFile(repo))
	return err == nil
}

func mkfs(repo string) {
	if _, err := os.Stat(srv(repo)); err == nil {
		die(1, "Repository %s already exists", repo)
	}
	for _, d := range []string{mnt(repo), spool(repo), snap(repo, 1)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			die(1, "%v", err)
		}
	}
	d := db{Head: 1}
	d.Tags = setTrunk(d.Tags, 1, 0)
	save(repo, d)
}

// checkTagName mirrors cvmfs_server's tag name rule.
func checkTagName(name string) {
	if name == "trunk" || name == "trunk-previous" {
		die(1, "Tag name '%s' is reserved", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:", r)) {
			die(1, "Tag name '%s' contains invalid characters (allowed: [a-zA-Z0-9-_./:])", name)
		}
	}
}

// lock takes the repository's transaction lock as cvmfs_server does,
// refusing with exit 17 while another transaction (or ingest) holds it.
func lock(repo string) *os.File {
	// O_EXCL makes the check-and-create atomic between concurrent callers.
	f, err := os.OpenFile(lockFile(repo), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		die(17, "Repository %s is already in a transaction", repo)
	}
	if err != nil {
		die(1, "%v", err)
	}
	return f
}

func transaction(repo, sub string) {
	f := lock(repo)
	fmt.Fprintf(f, "%s\n", sub)
	f.Close()
	if sub != "" {
		if err := os.MkdirAll(filepath.Join(mnt(repo), sub), 0o755); err != nil {
			die(1, "%v", err)
		}
	}
}

func publish(repo, tagName, message string) {
	if !inTransaction(repo) {
		die(1, "Repository %s is not in a transaction", repo)
	}
	now := time.Now().UTC()
	if tagName == "" {
		tagName = "generic-" + now.Format("2006-01-02T15:04:05.000Z")
	}
	checkTagName(tagName)
	d := load(repo)
	for _, t := range d.Tags {
		if t.Name == tagName {
			die(1, "Tag %s already exists", tagName)
		}
	}
	rev := d.Head + 1
	if err := copyTree(mnt(repo), snap(repo, rev)); err != nil {
		die(1, "publish: %v", err)
	}
	d.Tags = append(d.Tags, tag{Name: tagName, Hash: treeHash(snap(repo, rev)), Size: treeSize(snap(repo, rev)), Revision: rev, Timestamp: now.Unix(), Description: message})
	d.Tags = setTrunk(d.Tags, rev, d.Head)
	d.Head = rev
	save(repo, d)
	os.Remove(lockFile(repo))
	fmt.Printf("Processing changes...\nWaiting for upload of files before committing...\nExporting repository manifest\nTagging %s\nFlushing file system buffers\nSigning new manifest\nRemounting newly created repository revision\n", repo)
}

func abort(repo string) {
	if !inTransaction(repo) {
		die(1, "Repository %s is not in a transaction", repo)
	}
	d := load(repo)
	if err := os.RemoveAll(mnt(repo)); err != nil {
		die(1, "%v", err)
	}
	if err := copyTree(snap(repo, d.Head), mnt(repo)); err != nil {
		die(1, "abort: %v", err)
	}
	os.Remove(lockFile(repo))
}

func setTrunk(tags []tag, rev, prev int) []tag {
	var out []tag
	for _, t := range tags {
		if t.Name != "trunk" && t.Name != "trunk-previous" {
			out = append(out, t)
		}
	}
	now := time.Now().Unix()
	out = append(out, tag{Name: "trunk", Hash: fakeHash("trunk", rev), Revision: rev, Timestamp: now, Description: "current HEAD"})
	if prev > 0 {
		out = append(out, tag{Name: "trunk-previous", Hash: fakeHash("trunk", prev), Revision: prev, Timestamp: now, Description: "default undo target"})
	}
	return out
}

func fakeHash(s string, rev int) string {
	h := sha1.Sum([]byte(s + strconv.Itoa(rev)))
	return hex.EncodeToString(h[:]) + "C"
}

func treeHash(dir string) string {
	h := sha1.New()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, p)
			fmt.Fprintf(h, "%s %o %d\n", rel, fi.Mode(), fi.Size())
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)) + "C"
}

func treeSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func listTags(repo string) {
	d := load(repo)
	tags := append([]tag(nil), d.Tags...)
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Revision > tags[j].Revision })
	for _, t := range tags {
		fmt.Printf("%s %s %d %d %d %s %s\n", t.Name, t.Hash, t.Size, t.Revision, t.Timestamp, "(default)", t.Description)
	}
}

func rollback(repo, target string) {
	if inTransaction(repo) {
		die(1, "Repository %s is in a transaction and cannot be rolled back", repo)
	}
	if target == "trunk" {
		die(1, "Cannot rollback to trunk")
	}
	d := load(repo)
	idx := -1
	for i, t := range d.Tags {
		if t.Name == target {
			idx = i
		}
	}
	if idx < 0 {
		die(1, "Target tag '%s' does not exist", target)
	}
	old := d.Tags[idx]
	rev := d.Head + 1
	if err := copyTree(snap(repo, old.Revision), snap(repo, rev)); err != nil {
		die(1, "rollback: %v", err)
	}
	var kept []tag
	for _, t := range d.Tags {
		switch {
		case t.Name == target:
			t.Revision, t.Timestamp, t.Hash = rev, time.Now().Unix(), treeHash(snap(repo, rev))
		case t.Name == "trunk" || t.Name == "trunk-previous":
		case t.Revision > old.Revision:
			continue
		}
		kept = append(kept, t)
	}
	d.Tags = setTrunk(kept, rev, d.Head)
	d.Head = rev
	save(repo, d)
	os.RemoveAll(mnt(repo))
	if err := copyTree(snap(repo, rev), mnt(repo)); err != nil {
		die(1, "rollback: %v", err)
	}
	fmt.Printf("Rolling back repository (leaving behind %s)\n", target)
}

func diff(repo, from, to string) {
	d := load(repo)
	revOf := func(name string) int {
		for _, t := range d.Tags {
			if t.Name == name {
				return t.Revision
			}
		}
		die(1, "tag %s does not exist", name)
		return 0
	}
	a, b := list(snap(repo, revOf(from))), list(snap(repo, revOf(to)))
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		ea, oka := a[p]
		eb, okb := b[p]
		switch {
		case !oka:
			fmt.Printf("A %s /%s +%d\n", eb.typ, p, eb.size)
		case !okb:
			fmt.Printf("R %s /%s -%d\n", ea.typ, p, ea.size)
		case ea.typ != eb.typ:
			fmt.Printf("M[M] %s%s /%s\n", ea.typ, eb.typ, p)
		case ea.content != eb.content || ea.size != eb.size:
			fmt.Printf("M[SC] %s /%s\n", ea.typ, p)
		}
	}
	fmt.Printf("S F 0\nS S 0\nS D 0\nS N 0\n")
}

type ent struct {
	typ     string
	size    int64
	content string
}

func list(dir string) map[string]ent {
	m := map[string]ent{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		e := ent{typ: "F", size: fi.Size()}
		switch {
		case fi.IsDir():
			e = ent{typ: "D"}
		case fi.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			e = ent{typ: "S", content: t}
		default:
			b, _ := os.ReadFile(p)
			e.content = string(b)
		}
		m[rel] = e
		return nil
	})
	return m
}

func ingest(repo, base string) {
	lock(repo).Close()
	dst := filepath.Join(mnt(repo), filepath.FromSlash(base))
	tr := tar.NewReader(os.Stdin)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			abort(repo)
			die(1, "ingest: reading tar: %v", err)
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			abort(repo)
			die(1, "ingest: unsafe path %q in tar", h.Name)
		}
		p := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.Remove(p)
			os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode)&0o7777)
			if err != nil {
				abort(repo)
				die(1, "ingest: %v", err)
			}
			io.Copy(out, tr)
			out.Close()
		}
	}
	publish(repo, "", "ingest")
}

// copyTree copies src to a new dst (directories, files, symlinks).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(t, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, t)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(t, b, fi.Mode().Perm())
		}
		return nil
	})
}
