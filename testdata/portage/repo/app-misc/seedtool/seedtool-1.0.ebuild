# compatbot's test repository: built by real Portage in the tests.
EAPI=8

DESCRIPTION="A tool the bootstrap installs by name (so it is in the world file) and a target removes"
HOMEPAGE="https://github.com/compatbot/compatbot"
# No sources: nothing to fetch, so nothing in the Manifest.
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
S="${WORKDIR}"

src_install() {
	printf '#!/bin/sh\necho seedtool\n' > seedtool || die "writing seedtool failed"
	dobin seedtool
}
