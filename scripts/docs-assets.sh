#!/usr/bin/env bash
# Swagger UI and ReDoc, served by the API from app/static/ so that /docs and /redoc work on a
# machine without internet (as deployed). The files are the npm registry's releases pinned
# below, with their licences; app/static/SHA256SUMS records them (tests/unit/test_docs_assets.py
# checks it).
#   scripts/docs-assets.sh          # fetch the pinned versions (npm pack) and rewrite the files
#   scripts/docs-assets.sh --check  # only verify app/static/ against SHA256SUMS
# To update: change a version below, run it, look at /docs and /redoc, run the tests, commit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SWAGGER_UI_VERSION=5.36.0 # npm: swagger-ui-dist
REDOC_VERSION=2.5.4       # npm: redoc (2.x: the standalone bundle FastAPI's page loads)
static=app/static

if [ "${1:-}" = "--check" ]; then
    (cd "$static" && sha256sum --quiet -c SHA256SUMS)
    exit
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" "redoc@$REDOC_VERSION" >/dev/null)
mkdir -p "$work/s" "$work/r"
tar xzf "$work/swagger-ui-dist-$SWAGGER_UI_VERSION.tgz" -C "$work/s"
tar xzf "$work/redoc-$REDOC_VERSION.tgz" -C "$work/r"

rm -rf "$static/swagger-ui" "$static/redoc"
mkdir -p "$static/swagger-ui" "$static/redoc"
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
    cp "$work/s/package/$f" "$static/swagger-ui/"
done
for f in bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE; do
    cp "$work/r/package/$f" "$static/redoc/"
done
# ReDoc's sidebar credit ("API docs by Redocly") loads its logo from cdn.redoc.ly: the one
# request either page makes off the server. Point it at an empty inline SVG (the credit text
# stays); fail loudly if a new release moved it.
logo='https://cdn.redoc.ly/redoc/logo-mini.svg'
[ "$(grep -o "$logo" "$static/redoc/redoc.standalone.js" | wc -l)" = 1 ] ||
    { echo "docs-assets: $logo not found once in redoc.standalone.js: check the patch" >&2; exit 1; }
sed -i "s|$logo|data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E|" \
    "$static/redoc/redoc.standalone.js"
printf 'swagger-ui-dist %s\nredoc %s\n' "$SWAGGER_UI_VERSION" "$REDOC_VERSION" >"$static/VERSIONS"
(cd "$static" && find swagger-ui redoc VERSIONS -type f | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
echo "docs-assets: swagger-ui-dist $SWAGGER_UI_VERSION, redoc $REDOC_VERSION in $static/"
