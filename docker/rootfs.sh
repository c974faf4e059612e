#!/bin/sh
# A Debian bookworm root file system as a tarball: the base of the offline build, for a
# machine whose Docker engine cannot pull from any registry (see docs/containers.md).
#
#   sudo sh docker/rootfs.sh var/containers/debian-bookworm-rootfs.tar
#   docker import var/containers/debian-bookworm-rootfs.tar imgproc-base:bookworm
#
# Packages come from the Debian mirror apt already uses on this machine (DEBIAN_MIRROR
# overrides it). The tarball holds what both local images need: python3 with venv (the
# image's virtualenv; Debian's own Python refuses system-wide pip installs) and
# redis-server with redis-cli (the Redis image for docker-compose). Needs root and
# debootstrap; about a minute and 280 MB.
set -eu

out="${1:?usage: sh docker/rootfs.sh OUTPUT.tar}"
suite=bookworm
packages=python3,python3-venv,redis-server

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror=$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Created-By: Packages' \
        | awk -v suite="$suite" '$1 == suite { print $2; exit }')
fi
if [ -z "$mirror" ]; then
    echo "no apt source for Debian $suite: set DEBIAN_MIRROR" >&2
    exit 2
fi

work=$(mktemp -d "$(dirname "$out")/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror"
# No package lists or downloaded .debs in the image; apt-get update fetches lists again.
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb
tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
echo "$out: $(du -h "$out" | cut -f1)"
