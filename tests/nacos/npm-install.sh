#!/usr/bin/env bash
# npm-install.sh DIR PACKAGE VERSION - installs PACKAGE@VERSION from the npm
# registry into DIR/node_modules, once: later runs find DIR's mark and do
# nothing, so the package is cached in the build tree across test runs.
#
# The ctest fixture "nacos_npm" (tests/nacos/CMakeLists.txt) runs this before
# the end-to-end tests. A flock on DIR/.lock serialises two runs. When the
# registry cannot be reached this fails with npm's own error message: the
# tests need the real package and never pass without it.
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 DIR PACKAGE VERSION" >&2; exit 2; }
dir=$1 pkg=$2 ver=$3

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mark=$dir/.installed-$pkg@$ver
exec 9>"$dir/.lock"
flock 9
if [ -f "$mark" ] && [ -f "$dir/node_modules/$pkg/package.json" ]; then
	exit 0
fi
for c in node npm; do
	command -v "$c" >/dev/null || { echo "npm-install.sh: no '$c' command: run tools/deps" >&2; exit 1; }
done
rm -f "$mark"
echo "npm-install.sh: installing $pkg@$ver into $dir (node $(node --version), npm $(npm --version))"
# One retry, 30 s at most per request: an unreachable registry fails in
# about a minute instead of npm's default several.
if ! out=$(npm install --no-save --no-package-lock --no-audit --no-fund \
	--fetch-retries 1 --fetch-retry-maxtimeout 30000 --fetch-timeout 30000 \
	--prefix "$dir" "$pkg@$ver" 2>&1); then
	printf '%s\n' "$out" >&2
	echo "npm-install.sh: npm could not install $pkg@$ver (npm's output above)" >&2
	exit 1
fi
got=$(node -p "require('$dir/node_modules/$pkg/package.json').version")
if [ "$got" != "$ver" ]; then
	echo "npm-install.sh: installed $pkg is $got, not $ver" >&2
	exit 1
fi
touch "$mark"
echo "npm-install.sh: $pkg@$got installed"
