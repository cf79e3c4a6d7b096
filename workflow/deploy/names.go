package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/publish"
)

// LineageFile is where a target's tree records its lineage, relative to
// the target's path. It lives in the published tree (not only in the
// database) so that a rollback, which republishes an older tree, brings
// the older lineage back with it, and so that losing the database loses no
// lineage.
const LineageFile = ".compatbot/lineage"

// ArtifactFile records the digest of the last artifact applied to the
// target's tree, for verifiers and for people reading the tree.
const ArtifactFile = ".compatbot/artifact"

// TargetPath is where target t lives in env's repository: the env's
// layout (Options.Layouts, publish.DefaultLayout when it has none) filled
// in, e.g. versions/2025.06/compat/linux/x86_64.
func (d *Engine) TargetPath(env string, t sets.Target) (string, error) {
	return d.layouts[env].Path(t)
}

// validTarget checks the target's names, which come from set file names
// in a PR, the way every layout does.
func validTarget(t sets.Target) error {
	for _, f := range []struct{ name, v string }{{"version", t.Version}, {"os", t.OS}, {"arch", t.Arch}} {
		if err := publish.ValidTargetName(f.v); err != nil {
			return fmt.Errorf("target %q: %s %v", t.String(), f.name, err)
		}
	}
	return nil
}

// TagName is the tag of a deploy: <version>-<os>-<arch>-pr<N>-<sha7>.
func TagName(t sets.Target, pr int, headSHA string) (string, error) {
	if err := validTarget(t); err != nil {
		return "", err
	}
	if pr <= 0 {
		return "", fmt.Errorf("PR number %d: must be positive", pr)
	}
	if err := validSHA(headSHA); err != nil {
		return "", err
	}
	tag := fmt.Sprintf("%s-%s-%s-pr%d-%s", t.Version, t.OS, t.Arch, pr, strings.ToLower(headSHA[:7]))
	if err := publish.ValidateTag(tag); err != nil {
		return "", err
	}
	return tag, nil
}

func validSHA(sha string) error {
	if len(sha) < 7 || len(sha) > 64 {
		return fmt.Errorf("head SHA %q: want 7 to 64 hex digits", sha)
	}
	for i, r := range sha {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return fmt.Errorf("head SHA %q: character %q at offset %d is not a hex digit", sha, r, i)
		}
	}
	return nil
}

// uniqueTag returns base, or base-2, base-3, ... when a redeploy of the
// same PR head already used the name (CVMFS refuses a duplicate tag).
func uniqueTag(base string, tags []publish.Tag) string {
	used := map[string]bool{}
	for _, t := range tags {
		used[t.Name] = true
	}
	if !used[base] {
		return base
	}
	for n := 2; ; n++ {
		if c := base + "-" + strconv.Itoa(n); !used[c] {
			return c
		}
	}
}

// NextLineage is the lineage of a tree after applying the artifact digest
// to a tree of lineage prev: sha256(prev "\n" digest). It names the
// target's content history (which artifacts, in which order, from empty)
// without hashing the tree, so "built on the same base" is one string
// comparison.
func NextLineage(prev, digest string) string {
	sum := sha256.Sum256([]byte(prev + "\n" + digest))
	return hex.EncodeToString(sum[:])
}

// ReadLineage reads the lineage of the target tree at dir (a target's
// path inside a published tree or a build's lower layer); "" when the tree
// has none (empty, or never deployed by compatbot).
func ReadLineage(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(LineageFile)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lineage: %w", err)
	}
	lin := strings.TrimSpace(string(data))
	if lin != "" {
		if b, err := hex.DecodeString(lin); err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("%s: %q is not a lineage (64 hex digits)", filepath.Join(dir, LineageFile), lin)
		}
	}
	return lin, nil
}

// writeMarkers records lineage and digest in the transaction's tree.
func writeMarkers(dir, lineage, digest string) error {
	md := filepath.Join(dir, ".compatbot")
	if err := os.MkdirAll(md, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(LineageFile)), []byte(lineage+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, filepath.FromSlash(ArtifactFile)), []byte(digest+"\n"), 0o644)
}
