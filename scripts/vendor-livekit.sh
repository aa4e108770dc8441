#!/usr/bin/env bash
# Copies the LiveKit browser client's compiled bundle (UMD, global
# LivekitClient) from the npm package pinned in scripts/livekit/package.json
# into internal/web/static/livekit, with its licence. The result is
# committed, so building or running carefront needs no npm. visit.js uses
# it only when --video-provider is livekit.
# Run it after changing the pinned version:  scripts/vendor-livekit.sh
set -euo pipefail
cd "$(dirname "$0")/livekit"
npm install --no-audit --no-fund --loglevel=error --package-lock=false
src=node_modules/livekit-client
dst=../../internal/web/static/livekit
rm -rf "$dst"
mkdir -p "$dst"
cp "$src/dist/livekit-client.umd.js" "$dst/"
sed -i '/sourceMappingURL/d' "$dst/livekit-client.umd.js"
cp "$src/LICENSE" "$dst/LICENSE"
version=$(node -p "require('./$src/package.json').version")
echo "$version" > "$dst/VERSION"
rm -rf node_modules
echo "vendored livekit-client $version into internal/web/static/livekit ($(du -sh "$dst" | cut -f1))"
