# compatbot's test repository: built by real Portage in the tests.
EAPI=8

DESCRIPTION="A tool the pull request removes"
HOMEPAGE="https://github.com/compatbot/compatbot"
# The host does not exist: every fetch must come from compatbot's mirror.
SRC_URI="https://upstream.invalid/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"


src_compile() {
	${CC:-cc} ${CFLAGS} oldtool.c -o oldtool || die "compiling oldtool.c failed"
}

src_install() {
	dobin oldtool
}
