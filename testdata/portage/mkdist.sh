#!/bin/sh
# Makes distfiles/<P>.tar.gz from src/<P>/, byte-reproducibly (fixed
# mtime, owner and order, gzip without a name or time), then the Manifests.
set -eu
cd "$(dirname "$0")/src"
for d in */; do
	d=${d%/}
	tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -cf - "$d" | gzip -n -9 >"../distfiles/$d.tar.gz"
done
exec python3 ../mkmanifests.py
