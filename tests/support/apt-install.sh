#!/bin/sh
# apt-get install Debian packages for the tests, as root, without starting the services they
# ship. Usage: sh tests/support/apt-install.sh PACKAGE...
#
# Why: a package's own service, started by its postinst, would change the machine under the
# tests. Debian's dockerd started with its defaults sets the host's iptables FORWARD policy to
# DROP (and turns on ip_forward), which breaks the multi-host tests' bridges; Debian's
# redis-server would claim port 6379. The tests start their own processes instead.
# policy-rc.d answering 101 is Debian's way to keep services from starting: one is put in
# place for the install only, unless the machine already has one.
set -eu
[ "$#" -gt 0 ] || { echo "usage: sh tests/support/apt-install.sh PACKAGE..." >&2; exit 2; }

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
echo "installing $* (their services are not started)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
