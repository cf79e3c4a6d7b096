package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	compatbot "github.com/compatbot/compatbot"
)

// fakeEmergeFiles are the files of the embedded fake installer, in the
// order they are hashed.
var fakeEmergeFiles = []string{"fakeemerge", "catalog", "system"}

// embeddedFakeEmerge writes the fake installer compatbot carries (embed.go)
// to a directory of the user's cache named by its content, and returns the
// script's path: what a binary installed with `go install` runs when it is
// not inside a checkout. The user's cache and not /tmp, so no other user
// can plant a script there; an existing copy is checked and rewritten if
// it differs.
func embeddedFakeEmerge() (string, error) {
	h := sha256.New()
	contents := map[string][]byte{}
	for _, name := range fakeEmergeFiles {
		b, err := fs.ReadFile(compatbot.FakeEmerge, name)
		if err != nil {
			return "", err
		}
		contents[name] = b
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no place for the embedded fake installer (%v): set COMPATBOT_FAKEEMERGE or run from a compatbot checkout", err)
	}
	dir := filepath.Join(base, "compatbot", "fakeemerge-"+hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("embedded fake installer: %w", err)
	}
	for _, name := range fakeEmergeFiles {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, contents[name]) {
			continue
		}
		mode := os.FileMode(0o644)
		if name == "fakeemerge" {
			mode = 0o755
		}
		// Written aside and renamed: a concurrent run never executes half a
		// script.
		tmp := p + fmt.Sprintf(".tmp%d", os.Getpid())
		if err := os.WriteFile(tmp, contents[name], mode); err != nil {
			return "", fmt.Errorf("embedded fake installer: %w", err)
		}
		if err := os.Chmod(tmp, mode); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, p); err != nil {
			return "", fmt.Errorf("embedded fake installer: %w", err)
		}
	}
	return filepath.Join(dir, "fakeemerge"), nil
}
