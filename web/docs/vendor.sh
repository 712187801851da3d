#!/bin/sh
# Vendors Swagger UI into swagger-ui/ from the npm package swagger-ui-dist,
# at the version that tools/openapi/package-lock.json pins (with its
# integrity hash), and prints the sizes that README.md records.
#
#   web/docs/vendor.sh          install the pinned package, copy its files
#   web/docs/vendor.sh --check  fail unless swagger-ui/ is exactly them (make
#                               openapi-check, part of make test, runs it
#                               after installing the package)
#
# To move to another version: change swagger-ui-dist in
# tools/openapi/package.json, run `npm install` there, run this script,
# update README.md, and look at /docs (go test -run TestDocs ./cmd/stephub).
set -eu
cd "$(dirname "$0")"
tools=../../tools/openapi
src=$tools/node_modules/swagger-ui-dist
# Only what the page loads, and the licences that must travel with it.
files="swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE"

if [ "${1:-}" = --check ]; then
  [ -d "$src" ] || { echo "$src is missing: run npm ci in tools/openapi (make openapi-check does)" >&2; exit 1; }
  version=$(node -p "require('./$src/package.json').version")
  for f in $files; do
    cmp -s "$src/$f" "swagger-ui/$f" || { echo "web/docs/swagger-ui/$f differs from swagger-ui-dist $version: run web/docs/vendor.sh" >&2; exit 1; }
  done
  [ "$(ls swagger-ui | sort)" = "$(printf '%s\n' $files | sort)" ] || { echo "web/docs/swagger-ui holds other files than: $files" >&2; exit 1; }
  exit 0
fi

(cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
version=$(node -p "require('./$src/package.json').version")
rm -rf swagger-ui
mkdir swagger-ui
for f in $files; do cp "$src/$f" "swagger-ui/$f"; done
echo "swagger-ui-dist $version"
for f in swagger-ui-bundle.js swagger-ui.css; do
  echo "$f: $(wc -c < "swagger-ui/$f") bytes, $(gzip -9 -c "swagger-ui/$f" | wc -c) gzipped"
done
