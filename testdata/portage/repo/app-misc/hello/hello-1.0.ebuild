# compatbot's test repository: built by real Portage in the tests.
EAPI=8

DESCRIPTION="Prints its version, its library's and the EPREFIX it was built for"
HOMEPAGE="https://github.com/compatbot/compatbot"
# The host does not exist: every fetch must come from compatbot's mirror.
SRC_URI="https://upstream.invalid/${P}.tar.gz"
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
# hi is a short alias; package.use can turn it off (the real-Portage example does).
IUSE="+hi"
DEPEND="dev-libs/libgreet:="
RDEPEND="${DEPEND}"

src_compile() {
	${CC:-cc} ${CFLAGS} -DEPREFIX="\"${EPREFIX}\"" -I"${ESYSROOT}/usr/include" \
		hello.c -o hello -L"${ESYSROOT}/usr/lib" -lgreet || die "compiling hello.c failed"
}

src_install() {
	dobin hello
	if use hi; then
		dosym hello /usr/bin/hi
	fi
	insinto /usr/share/hello
	echo "${EPREFIX}" > prefix.txt || die
	doins prefix.txt
}
