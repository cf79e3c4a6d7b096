#!/usr/bin/env python3
"""Rewrites the test repository's Manifests from distfiles/ (run after a
source changes; make the tarballs with mkdist.sh first). Portage's own
`ebuild ... manifest` writes byte-identical lines (checked by hand, see
../shared/portage/README.md)."""
import glob, hashlib, os, re
here = os.path.dirname(os.path.abspath(__file__))
for pkgdir in sorted(glob.glob(os.path.join(here, "repo", "*", "*"))):
    if not os.path.isdir(pkgdir) or os.path.basename(os.path.dirname(pkgdir)) in ("profiles", "metadata"):
        continue
    pn = os.path.basename(pkgdir)
    lines = []
    for eb in sorted(glob.glob(os.path.join(pkgdir, "*.ebuild"))):
        pv = os.path.basename(eb)[len(pn) + 1:-len(".ebuild")]
        name = f"{pn}-{pv}.tar.gz"
        if "SRC_URI" not in open(eb).read():
            continue  # nothing to fetch, nothing to list (thin Manifests)
        data = open(os.path.join(here, "distfiles", name), "rb").read()
        lines.append(f"DIST {name} {len(data)} BLAKE2B {hashlib.blake2b(data).hexdigest()} SHA512 {hashlib.sha512(data).hexdigest()}\n")
    if lines:
        open(os.path.join(pkgdir, "Manifest"), "w").write("".join(sorted(lines)))
