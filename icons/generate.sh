#!/usr/bin/env bash
# Regenerates the console's icon set from the one source image, cloudkeep.svg.
# Needs Node.js/npm (the Tauri CLI from npm; nothing else is installed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
npx --yes @tauri-apps/cli@2 icon "$here/cloudkeep.svg" -o "$out" >/dev/null
cp "$out"/{32x32.png,128x128.png,icon.icns,icon.ico,icon.png} "$here/"
cp "$out/128x128@2x.png" "$here/256x256.png"
echo "icons regenerated in $here"
