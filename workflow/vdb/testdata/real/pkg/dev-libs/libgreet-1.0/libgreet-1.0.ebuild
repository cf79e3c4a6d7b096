# compatbot's test repository: built by real Portage in the tests.
EAPI=8

DESCRIPTION="A tiny static library (the dependency)"
HOMEPAGE="https://github.com/compatbot/compatbot"
# The host does not exist: every fetch must come from compatbot's mirror.
SRC_URI="https://upstream.invalid/${P}.tar.gz"
LICENSE="MIT"
SLOT="0/1"
KEYWORDS="amd64"


src_compile() {
	${CC:-cc} ${CFLAGS} -c greet.c -o greet.o || die "compiling greet.c failed"
	${AR:-ar} rcs libgreet.a greet.o || die
}

src_install() {
	dolib.a libgreet.a
	insinto /usr/include
	doins greet.h
}
