#!/usr/bin/env bash
# Installs the npm packages the browser tests inject into pages (tools/npm: axe-core) into
#   ${XDG_CACHE_HOME:-~/.cache}/assistente-digital/npm-tools-<key>/node_modules
# where <key> hashes tools/npm/package-lock.json and Node's major version, so `npm ci` runs only
# when a pin changes. Checkouts sharing the cache wait for one install (flock).
#
# Usage: hack/npm-tools.sh           installs (if needed) and prints the node_modules path
#        hack/npm-tools.sh --path    prints the node_modules path only (no install)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/tools/npm
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital

log() { printf '[npm-tools] %s\n' "$*" >&2; }

command -v npm >/dev/null || { log "Node.js and npm are required (apt-get install nodejs npm)"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
key=$( { cat "$src/package.json" "$src/package-lock.json" "$src/.npmrc"; echo "node$node_major"; } \
  | sha256sum | cut -c1-12)
dir=$cache_root/npm-tools-$key

if [[ ${1:-} == --path ]]; then echo "$dir/node_modules"; exit 0; fi

mkdir -p "$cache_root"
exec {lock_fd}>"$dir.lock"
flock "$lock_fd"
if [[ -f $dir/.complete ]]; then
  echo "$dir/node_modules"
  exit 0
fi
log "installing $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["dependencies"]; print(", ".join(f"{k}@{v}" for k, v in d.items()))' "$src/package.json") into $dir"
rm -rf "$dir" "$dir.tmp"
mkdir -p "$dir.tmp"
cp "$src/package.json" "$src/package-lock.json" "$src/.npmrc" "$dir.tmp/"
(cd "$dir.tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
touch "$dir.tmp/.complete"
mv "$dir.tmp" "$dir"
echo "$dir/node_modules"
