#!/usr/bin/env bash
# Builds Rasa's own virtual environment outside the repository:
#   ${XDG_CACHE_HOME:-~/.cache}/assistente-digital/rasa-venv-<key>/
# where <key> hashes rasa/requirements.lock, the rasa/rasa-sdk versions and the interpreter
# version, so the venv is rebuilt only when a pin changes. Idempotent: a complete venv (marked by
# a .complete file) is reused as is.
#
# Rasa 3.6 pins SQLAlchemy 1.4, pydantic 1.10, redis 4.6 and sanic 21.12, which clash with the
# app's FastAPI/SQLAlchemy 2 stack, so it never shares the workspace venv.
#
# Usage: hack/rasa-setup.sh            builds (if needed) and prints the venv path on stdout
#        hack/rasa-setup.sh --path     prints the venv path only (no build)
# Env:   RASA_PYTHON   interpreter to build from (default: pyenv's 3.11.7, else python3.11)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
lock=$repo/rasa/requirements.lock
# shellcheck source=hack/versions.env
source "$repo/hack/versions.env"
# rasa 3.6.21 is the last Rasa Open Source release; rasa-sdk 3.6.2 matches the rasa/rasa-sdk image.
RASA_PACKAGES=("rasa==$RASA_VERSION" "rasa-sdk==$RASA_SDK_VERSION")
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital

log() { printf '[rasa-setup] %s\n' "$*" >&2; }

find_python() {
  if [[ -n ${RASA_PYTHON:-} ]]; then echo "$RASA_PYTHON"; return; fi
  local candidate
  for candidate in "$(pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.11.7/bin/python3.11" \
    /root/.pyenv/versions/3.11.7/bin/python3.11 "$(command -v python3.11 || true)"; do
    if [[ -n $candidate && -x $candidate ]]; then echo "$candidate"; return; fi
  done
  log "no Python 3.11 interpreter found; set RASA_PYTHON"
  exit 1
}

python=$(find_python)
py_version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
key=$( { cat "$lock"; echo "${RASA_PACKAGES[*]}"; echo "$py_version"; } | sha256sum | cut -c1-12)
venv=$cache_root/rasa-venv-$key

if [[ ${1:-} == --path ]]; then echo "$venv"; exit 0; fi

# Checkouts sharing the cache wait for one build instead of racing on the same directory.
mkdir -p "$cache_root"
exec {lock_fd}>"$venv.lock"
flock "$lock_fd"
if [[ -f $venv/.complete ]]; then
  log "reusing $venv"
  echo "$venv"
  exit 0
fi

log "building $venv from $python ($py_version); this takes a few minutes (TensorFlow 2.12)"
rm -rf "$venv"
mkdir -p "$cache_root"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip==24.3.1 >&2
log "installing $(grep -c '==' "$lock") pinned dependencies"
"$venv/bin/python" -m pip install --progress-bar off --no-input -r "$lock" >&2
log "installing ${RASA_PACKAGES[*]} (no deps: rasa 3.6 declares Python <3.11)"
"$venv/bin/python" -m pip install --progress-bar off --no-input --no-deps --ignore-requires-python \
  "${RASA_PACKAGES[@]}" >&2
log "checking the install"
SQLALCHEMY_SILENCE_UBER_WARNING=1 "$venv/bin/python" -c 'import rasa, rasa_sdk, snowballstemmer; print("rasa", rasa.__version__, "rasa_sdk", rasa_sdk.__version__)' >&2
touch "$venv/.complete"
log "ready: $venv"
echo "$venv"
