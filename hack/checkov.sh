#!/usr/bin/env bash
# Installs checkov (the manifest scanner) into its own virtualenv, apart from the project's: it
# brings dozens of dependencies no other part needs. The venv lives in
#   ${XDG_CACHE_HOME:-~/.cache}/assistente-digital/checkov-<version>-<key>
# where <key> hashes the version and the Python used, so pip runs only when the pin changes.
# Checkouts sharing the cache wait for one install (flock).
#
# Usage: hack/checkov.sh           installs (if needed) and prints the checkov executable
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$repo/hack/versions.env"
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital

log() { printf '[checkov] %s\n' "$*" >&2; }

python=""
for candidate in python3.11 "$(pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.11.7/bin/python3.11" python3; do
  if command -v "$candidate" >/dev/null 2>&1; then python=$(command -v "$candidate"); break; fi
done
[[ -n $python ]] || { log "Python 3 is required"; exit 1; }
key=$( { echo "$CHECKOV_VERSION"; "$python" -VV; } | sha256sum | cut -c1-12)
dir=$cache_root/checkov-$CHECKOV_VERSION-$key

mkdir -p "$cache_root"
exec {lock_fd}>"$dir.lock"
flock "$lock_fd"
if [[ ! -f $dir/.complete ]]; then
  log "installing checkov $CHECKOV_VERSION into $dir (a few minutes, once)"
  # Installed in place (a venv cannot be moved): .complete marks a finished install.
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$dir/.complete"
fi
echo "$dir/bin/checkov"
