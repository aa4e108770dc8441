#!/usr/bin/env bash
# Copies the compiled U.S. Web Design System assets (CSS, JS, the fonts and
# images its CSS references) from the npm package pinned in
# scripts/uswds/package.json into internal/web/static/uswds, with its licence.
# The result is committed, so building or running carefront needs no npm.
# Run it after changing the pinned version:  scripts/vendor-assets.sh
set -euo pipefail
cd "$(dirname "$0")/uswds"
npm ci --no-audit --no-fund --loglevel=error
src=node_modules/@uswds/uswds
dst=../../internal/web/static/uswds
rm -rf "$dst"
mkdir -p "$dst/css" "$dst/js" "$dst/fonts" "$dst/img"
cp "$src/dist/css/uswds.min.css" "$dst/css/"
cp "$src/dist/js/uswds.min.js" "$src/dist/js/uswds-init.min.js" "$dst/js/"
# Source maps point at sources we do not ship.
sed -i '/sourceMappingURL/d' "$dst/css/uswds.min.css" "$dst/js/"*.js
# The CSS references only .woff2 fonts; every supported browser reads them.
(cd "$src/dist/fonts" && find . -name '*.woff2' -exec cp --parents {} "$OLDPWD/$dst/fonts/" \;)
# Material icons (8 MB) are not referenced by the CSS; usa-icons are.
(cd "$src/dist/img" && tar cf - --exclude='material-icons*' .) | (cd "$dst/img" && tar xf -)
cp "$src/LICENSE.md" "$dst/LICENSE.md"
version=$(node -p "require('./$src/package.json').version")
echo "$version" > "$dst/VERSION"
echo "vendored @uswds/uswds $version into internal/web/static/uswds ($(du -sh "$dst" | cut -f1))"
