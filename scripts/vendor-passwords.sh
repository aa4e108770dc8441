#!/usr/bin/env bash
# Writes internal/identity/common-passwords.txt: the common passwords of 8
# characters or more (shorter ones fail the length rule anyway), lower-cased,
# from the ranked list in the npm package pinned in
# scripts/passwords/package.json, with its licence. The result is committed,
# so building carefront needs no npm. Run it after changing the pin:
#   scripts/vendor-passwords.sh
set -euo pipefail
cd "$(dirname "$0")/passwords"
npm ci --no-audit --no-fund --loglevel=error
src=node_modules/@zxcvbn-ts/language-common
dst=../../internal/identity
node -e '
const list = require("./'"$src"'/src/passwords.json");
const seen = new Set();
const out = [];
for (const p of list) {
  const l = p.toLowerCase();
  if ([...l].length >= 8 && !seen.has(l)) { seen.add(l); out.push(l); }
}
require("fs").writeFileSync("'"$dst"'/common-passwords.txt", out.join("\n") + "\n");
console.log("wrote " + out.length + " common passwords");
'
cp "$src/LICENSE.txt" "$dst/common-passwords.LICENSE"
