# compatbot's test repository: built by real Portage in the tests.
EAPI=8

DESCRIPTION="Fails in src_compile, on purpose"
HOMEPAGE="https://github.com/compatbot/compatbot"
# The host does not exist: every fetch must come from compatbot's mirror.
SRC_URI="https://upstream.invalid/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"


src_compile() {
	${CC:-cc} ${CFLAGS} broken.c -o broken || die "compiling broken.c failed"
}

src_install() {
	dobin broken
}
