#!/bin/sh
# Rebuild packages/ledger_1.5.0-1_all.deb from packaging/ledger-1.5/, byte for byte the same
# every time (the lab image's tag hashes the .deb's bytes: a rebuild must not change them
# unless the package's files did). Needs dpkg-deb (Debian's dpkg); runs nothing of the package.
#   labs/sample-product/packaging/build-deb.sh        # from anywhere
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
lab="$(dirname "$here")"
src="$here/ledger-1.5"
out="$lab/packages/ledger_1.5.0-1_all.deb"
export SOURCE_DATE_EPOCH=1764806400  # 2025-12-04 00:00:00 UTC: every timestamp in the .deb
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -R "$src" "$work/root"
# git keeps only the executable bit: set every mode and mtime explicitly
find "$work/root" -type d -exec chmod 0755 {} +
find "$work/root" -type f -exec chmod 0644 {} +
chmod 0755 "$work/root/DEBIAN/postinst" "$work/root/opt/ledger/ledger.py"
find "$work/root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$lab/packages"
dpkg-deb --root-owner-group -Zxz -z9 --build "$work/root" "$work/ledger.deb" >/dev/null
mv "$work/ledger.deb" "$out"
dpkg-deb -f "$out" Package Version Architecture
sha256sum "$out"
