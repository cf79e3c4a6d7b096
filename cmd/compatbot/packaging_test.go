package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd unit is one systemd accepts (systemd-analyze verify: known
// directives, valid values), with the binary where the unit says.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed (Debian package systemd; .ci/run installs it): %v", err)
	}
	unit, err := os.ReadFile("../../packaging/compatbot.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks ExecStart's binary exists: point it at any executable.
	self, _ := os.Executable()
	dir := t.TempDir()
	p := filepath.Join(dir, "compatbot.service")
	os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/compatbot", self)), 0o644)
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || strings.Contains(string(out), "compatbot.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"LoadCredential=app.pem:", "ProtectSystem=strict", "StateDirectory=compatbot", "serve --config /etc/compatbot/compatbot.yml"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// The image is built in stages (no toolchain in the result) and carries
// what builds and publishing need.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if n := strings.Count(df, "\nFROM "); n < 2 {
		t.Errorf("%d FROM stages, want a multi-stage build", n)
	}
	for _, pkg := range []string{" git ", " fuse-overlayfs ", " bubblewrap ", " openssh-client ", "COPY --from=build", "./cmd/compatbot"} {
		if !strings.Contains(df, pkg) {
			t.Errorf("Dockerfile lacks %q", strings.TrimSpace(pkg))
		}
	}
}
