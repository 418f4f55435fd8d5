#!/usr/bin/env bash
# The package step of tools/test: the Debian packages built, linted,
# installed, run, and removed again, on this machine (as root; CI is a fresh
# Debian 12). docs/operations.md describes the packages.
#
#   tests/package/run.sh [DEBDIR]
#
# 1. tools/package builds the packages into DEBDIR (default build/deb), or,
#    with DISTRO_PACKAGE_PREBUILT=1, takes the .debs already there;
# 2. lintian: any error or warning fails (tests/package/lintian.md explains
#    the overrides in debian/*.lintian-overrides, if any);
# 3. dpkg -i; the files, conffiles and the distrod user are checked, and
#    systemd-analyze verify checks the installed unit;
# 4. the installed /usr/bin/distrod --version names this commit; distrod
#    runs as the distrod user with the packaged /etc/distrod/distrod.conf
#    (ports overridden: tests never take the default ports); a program built
#    with pkg-config against libdistro-client-dev (shared, then the static
#    archive alone) registers and lists through it;
# 5. tests/package/notify_test.py runs the installed distrod and distroctl
#    under a stand-in systemd notification socket (READY, STATUS, WATCHDOG,
#    STOPPING, standalone and in a two-member cluster);
# 6. dpkg -r keeps the conffiles, dpkg -P removes them.
#
# Skipped, with the reason, when not root or when a distrod package is
# already installed (the test would replace and then purge it). Exit 0 on
# success, 77 when skipped, 1 on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
debdir=${1:-build/deb}
pkgs=(distrod libdistro-client0 libdistro-client-dev)

say() { echo "package: $*"; }
fail() {
	echo "package: FAILED: $*" >&2
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	say "SKIPPED: needs root (dpkg -i)"
	exit 77
fi
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" = "install ok installed" ]; then
		say "SKIPPED: $p is already installed here; remove it first (dpkg -P ${pkgs[*]})"
		exit 77
	fi
done

work=$(mktemp -d /tmp/distrod-pkgtest.XXXXXX)
node_pid=
cleanup() {
	[ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
	dpkg -P "${pkgs[@]}" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# ---- 1. build ----
if [ "${DISTRO_PACKAGE_PREBUILT:-0}" = 1 ]; then
	say "using the packages in $debdir"
else
	tools/package "$debdir" >/dev/null
fi
version=$(sed -n 's/^project(distrod VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
for p in "${pkgs[@]}"; do
	ls "$debdir/${p}_${version}_"*.deb >/dev/null 2>&1 || fail "$debdir has no $p $version"
done
debs=()
for p in "${pkgs[@]}"; do debs+=("$(ls "$debdir/${p}_${version}_"*.deb)"); done
say "built ${debs[*]##*/}"

# ---- 2. lintian ----
if ! lintian --fail-on error,warning "${debs[@]}" >"$work/lintian.txt" 2>&1; then
	cat "$work/lintian.txt" >&2
	fail "lintian found errors or warnings"
fi
say "lintian: no errors or warnings"

# ---- 3. install ----
dpkg -i "${debs[@]}" >"$work/dpkg.txt" 2>&1 || {
	cat "$work/dpkg.txt" >&2
	fail "dpkg -i"
}
for f in /usr/bin/distrod /usr/bin/distroctl /usr/bin/distrobench /lib/systemd/system/distrod.service \
	/usr/share/man/man8/distrod.8.gz /usr/share/man/man1/distroctl.1.gz \
	/usr/share/man/man1/distrobench.1.gz /usr/include/distro/client.h; do
	[ -e "$f" ] || fail "$f is not installed"
done
conffiles=$(dpkg-query -W -f='${Conffiles}' distrod)
for f in /etc/distrod/distrod.conf /etc/distrod/cluster.conf; do
	grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done
getent passwd distrod >/dev/null || fail "no distrod user after dpkg -i"
[ "$(getent passwd distrod | cut -d: -f7)" = /usr/sbin/nologin ] || fail "the distrod user can log in"
soname=$(objdump -p /usr/lib/*/libdistro_client.so.0 | awk '/SONAME/ { print $2 }')
[ "$soname" = libdistro_client.so.0 ] || fail "SONAME $soname"
if ! systemd-analyze verify /lib/systemd/system/distrod.service >"$work/verify.txt" 2>&1; then
	cat "$work/verify.txt" >&2
	fail "systemd-analyze verify distrod.service"
fi
[ -s "$work/verify.txt" ] && { cat "$work/verify.txt" >&2; fail "systemd-analyze verify printed warnings"; }
say "installed: binaries, man pages, unit, conffiles, the distrod user; the unit verifies"

# ---- 4. the installed programs ----
# The commit is what git archive put in cmake/commit.txt: a prefix of HEAD's hash.
head=$(git rev-parse HEAD)
for prog in distrod distroctl distrobench; do
	got=$("/usr/bin/$prog" --version)
	commit=$(sed -n "s/^$prog $version (git \([0-9a-f]\{7,\}\))$/\1/p" <<<"$got")
	[ -n "$commit" ] && [ "${head#"$commit"}" != "$head" ] ||
		fail "$prog --version: '$got', want '$prog $version (git ${head:0:7})'"
done
say "--version: $(/usr/bin/distrod --version)"

chown distrod: "$work"
cd "$work" # the distrod user cannot read the repository's parents
setpriv --reuid distrod --regid distrod --clear-groups --no-new-privs \
	/usr/bin/distrod --config /etc/distrod/distrod.conf --bind 127.0.0.1 --http-bind 127.0.0.1 \
	--port 0 --port-file "$work/port" --http-port 0 --http-port-file "$work/http" \
	--nacos-port 0 --workers 2 >"$work/distrod.log" 2>&1 &
node_pid=$!
for _ in $(seq 200); do
	[ -s "$work/port" ] && [ -s "$work/http" ] && break
	kill -0 "$node_pid" 2>/dev/null || { cat "$work/distrod.log" >&2; fail "distrod exited at start"; }
	sleep 0.05
done
[ -s "$work/port" ] || { cat "$work/distrod.log" >&2; fail "distrod wrote no --port-file in 10 s"; }
port=$(cat "$work/port")
[ "$(ps -o user= -p "$node_pid")" = distrod ] || fail "distrod does not run as the distrod user"
/usr/bin/distroctl -s "127.0.0.1:$port" register pkg.installed 192.0.2.40:8080 >/dev/null ||
	fail "distroctl register against the installed distrod"
# (Outputs are captured before grep: with pipefail, grep -q closing the pipe early fails it.)
listed=$(/usr/bin/distroctl -s "127.0.0.1:$port" list pkg.installed)
grep -q "192.0.2.40:8080" <<<"$listed" || fail "distroctl list does not show the instance: $listed"
say "the installed distrod runs as distrod with /etc/distrod/distrod.conf; distroctl registers and lists"

flags=$(pkg-config --cflags --libs distro)
cc -o "$work/smoke_shared" "$root/tests/package/client_smoke.c" $flags ||
	fail "cc with pkg-config distro"
libs=$(ldd "$work/smoke_shared")
grep -q 'libdistro_client.so.0 => /.*/libdistro_client.so.0 ' <<<"$libs" || fail "smoke_shared does not use the shared library: $libs"
cc -o "$work/smoke_static" "$root/tests/package/client_smoke.c" $(pkg-config --cflags distro) \
	-l:libdistro_client.a $(pkg-config --static --libs-only-l distro | sed 's/-ldistro_client//') ||
	fail "cc with the static archive alone"
libs=$(ldd "$work/smoke_static")
grep -q libdistro_client <<<"$libs" && fail "smoke_static uses the shared library: $libs"
"$work/smoke_shared" "127.0.0.1:$port" pkg.shared >/dev/null || fail "the shared-library client"
"$work/smoke_static" "127.0.0.1:$port" pkg.static >/dev/null || fail "the static-archive client"
say "libdistro-client-dev: built with pkg-config, shared and static, both register and list"
kill -TERM "$node_pid"
wait "$node_pid" || fail "distrod exited non-zero on SIGTERM"
node_pid=
cd "$root"

# ---- 5. sd_notify ----
python3 tests/package/notify_test.py /usr/bin/distrod /usr/bin/distroctl >"$work/notify.txt" 2>&1 || {
	cat "$work/notify.txt" >&2
	fail "notify_test.py against the installed distrod"
}
say "sd_notify: $(grep -c '^ok' "$work/notify.txt") checks passed (READY, STATUS, WATCHDOG, STOPPING)"

# ---- 6. remove, purge ----
dpkg -r "${pkgs[@]}" >"$work/dpkg.txt" 2>&1 || {
	cat "$work/dpkg.txt" >&2
	fail "dpkg -r"
}
[ -e /usr/bin/distrod ] && fail "/usr/bin/distrod still there after dpkg -r"
[ -e /etc/distrod/distrod.conf ] || fail "dpkg -r removed the conffile /etc/distrod/distrod.conf"
dpkg -P "${pkgs[@]}" >"$work/dpkg.txt" 2>&1 || {
	cat "$work/dpkg.txt" >&2
	fail "dpkg -P"
}
[ -e /etc/distrod ] && fail "/etc/distrod still there after dpkg -P"
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	"" | *not-installed) ;;
	*) fail "$p after dpkg -P: $status" ;;
	esac
done
say "dpkg -r keeps the conffiles, dpkg -P removes everything"
say "all passed"
