#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian machine, skipping what is already there:
#   system packages (apt), uv, the project's virtual environment (.venv, from uv.lock),
#   the Go-built test bed (hack/build-tools.sh), Rasa's venv and model (hack/rasa-*.sh), Keycloak
#   (hack/keycloak.sh) and the npm packages the browser tests inject (hack/npm-tools.sh).
# Usage: hack/setup.sh [system|python|tools|rasa|keycloak|browser|pulumi|all]...
#   (default: all but pulumi)
#   pulumi: pulumi/.venv from pulumi/uv.lock (the cloud SDKs, ~450 MB; only its suites need it)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=hack/versions.env
source hack/versions.env
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

system() {
  local missing=()
  [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15 postgresql-client-15)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v git >/dev/null || missing+=(git)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v ss >/dev/null || missing+=(iproute2)
  command -v ps >/dev/null || missing+=(procps)
  # The real node of the local cluster and the images it runs (docs/testbed.md).
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v gcc >/dev/null || missing+=(gcc)
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
  command -v openssl >/dev/null || missing+=(openssl)
  # Observability: promtool and amtool check the rules and routing; the servers run for the
  # real-scrape tests and beside `make up` (as plain processes: the services stay stopped).
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
  command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
  # Browser tests: Debian's Chromium (never a browser downloaded by a test tool) and a font.
  command -v chromium >/dev/null || missing+=(chromium)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
  # Keycloak runs on Java 17 and comes from Maven Central through Maven; axe-core through npm.
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v npm >/dev/null || missing+=(nodejs npm)
  if [ ${#missing[@]} -eq 0 ]; then
    log "system packages: present (PostgreSQL 15, Redis, shellcheck, containerd, buildah, Prometheus, Alertmanager, Chromium, Java, Maven, npm)"
    return
  fi
  log "system packages: installing ${missing[*]} with apt"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system-wide Redis/PostgreSQL (and containerd) where it can; the project
  # runs its own, on private ports and sockets, so those are not needed. The monitoring daemons
  # would listen on every interface: stop and disable the ones this step just installed (the
  # binaries stay).
  if [ -d /run/systemd/system ]; then
    local unit
    for unit in prometheus prometheus-alertmanager prometheus-redis-exporter; do
      if printf '%s\n' "${missing[@]}" | grep -qx "$unit"; then
        as_root systemctl disable --now "$unit" >/dev/null 2>&1 || true
      fi
    done
  fi
}

python311() {
  local candidate
  for candidate in python3.11 "$(command -v pyenv >/dev/null && pyenv root)/versions/3.11"*/bin/python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  log "Python 3.11 is required (pyenv install 3.11, or apt-get install python3.11)"
  exit 1
}

uv_bin() { echo "$cache_root/uv-$UV_VERSION/bin/uv"; }

python() {
  local uv py
  uv=$(uv_bin)
  py=$(python311)
  if [ ! -x "$uv" ]; then
    log "uv $UV_VERSION: installing into $(dirname "$(dirname "$uv")")"
    "$py" -m venv "$cache_root/uv-$UV_VERSION"
    "$cache_root/uv-$UV_VERSION/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
  log "project virtualenv: syncing .venv from uv.lock"
  "$uv" sync --frozen --python "$py" --quiet
}

tools() {
  command -v go >/dev/null || { log "Go 1.26+ is required to build the test bed (https://go.dev/doc/install)"; exit 1; }
  hack/build-tools.sh all
}

pulumi() {
  local uv py
  uv=$(uv_bin)
  py=$(python311)
  [ -x "$uv" ] || python
  log "pulumi virtualenv: syncing pulumi/.venv from pulumi/uv.lock (cloud SDKs)"
  "$uv" sync --frozen --project pulumi --python "$py" --quiet
}

rasa() {
  # Rasa's own venv (its pins clash with the app's), then the model, both cached by content hash.
  hack/rasa-setup.sh >/dev/null
  hack/rasa-train.sh >/dev/null
}

keycloak() {
  # The server distribution from Maven Central and its one-time build, cached by version.
  hack/keycloak.sh >/dev/null
}

browser() {
  # axe-core (npm, pinned in tools/npm), cached by the lock file's hash.
  hack/npm-tools.sh >/dev/null
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] || [ "${steps[0]}" = all ] && steps=(system python tools rasa keycloak browser)
for step in "${steps[@]}"; do
  case "$step" in
    system|python|tools|rasa|keycloak|browser|pulumi) "$step" ;;
    *) log "unknown step: $step"; exit 2 ;;
  esac
done
