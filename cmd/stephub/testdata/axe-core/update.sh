#!/bin/sh
# Vendors axe-core's axe.min.js and its licence for the dashboard's browser
# tests (browser_axe_test.go), from the npm registry at the pinned version,
# checked against the registry's recorded integrity. Run it from this folder
# after changing VERSION and INTEGRITY (npm view axe-core@VERSION dist.integrity).
set -eu
VERSION=4.14.1
INTEGRITY=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "axe-core@$VERSION" >/dev/null
tgz="$tmp/axe-core-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
	echo "axe-core-$VERSION.tgz: integrity $got; want $INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/axe.min.js package/LICENSE
cp "$tmp/package/axe.min.js" axe.min.js
cp "$tmp/package/LICENSE" LICENSE
echo "$VERSION" > VERSION
