#!/usr/bin/env bash
# Copy the browser libraries from node_modules (declared in package.json, pinned by
# package-lock.json) into static/vendor/, which is not committed. No CDN anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
copy() {  # copy SRC DEST (relative to node_modules/ and static/vendor/)
  mkdir -p "static/vendor/$(dirname "$2")"
  cp -f "node_modules/$1" "static/vendor/$2"
}
copy ol/dist/ol.js ol/ol.js
copy ol/ol.css ol/ol.css
