package artifact

// Verify re-hashes the stored tarball and manifest against the digest, as
// Apply does first: for callers that send the tarball elsewhere (a remote
// publisher) instead of applying it here.
func (a Artifact) Verify() error {
	if err := a.Manifest.Validate(); err != nil {
		return err
	}
	return verifyDigest(a)
}
