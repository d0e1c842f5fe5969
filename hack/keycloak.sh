#!/usr/bin/env bash
# Fetches the Keycloak server distribution from Maven Central with Maven
# (org.keycloak:keycloak-quarkus-dist:<KEYCLOAK_VERSION>:zip), unpacks it and runs its one-time
# Quarkus build (`kc.sh build`) for the test bed's options, into
#   ${XDG_CACHE_HOME:-~/.cache}/assistente-digital/keycloak-<version>-<key>/
# where <key> hashes the build options and the Java version. Servers then start with
# `kc.sh start --optimized` from a per-instance home that links to this one (see
# testbed/src/assistente_testbed/keycloak.py), so no start pays for the build again.
# Checkouts sharing the cache wait for one fetch and build (flock).
#
# Usage: hack/keycloak.sh           fetches and builds (if needed), prints the distribution path
#        hack/keycloak.sh --path    prints the distribution path only
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$repo/hack/versions.env"
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital
# Build-time options: an in-memory H2 database (each server imports its realm at start) and the
# local cache, so nothing clusters or listens beyond the HTTP port on 127.0.0.1.
BUILD_OPTIONS=(--db=dev-mem --cache=local --health-enabled=false --metrics-enabled=false)

log() { printf '[keycloak] %s\n' "$*" >&2; }

command -v java >/dev/null || { log "Java 17+ is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
java_version=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.version = //p')
key=$( { echo "${BUILD_OPTIONS[*]}"; echo "$java_version"; } | sha256sum | cut -c1-12)
home=$cache_root/keycloak-$KEYCLOAK_VERSION-$key

if [[ ${1:-} == --path ]]; then echo "$home"; exit 0; fi

mkdir -p "$cache_root"
exec {lock_fd}>"$home.lock"
if ! flock -n "$lock_fd"; then
  log "another checkout is preparing $home; waiting for it"
  flock "$lock_fd"
fi
if [[ -f $home/.complete ]]; then
  echo "$home"
  exit 0
fi

command -v mvn >/dev/null || { log "Maven is required to fetch Keycloak (apt-get install maven)"; exit 1; }
start=$(date +%s)
repo_local=$cache_root/maven-repository
artifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip
log "fetching $artifact with Maven (about 160 MB, first time only)"
# --strict-checksums: a corrupt download fails here instead of at unzip time.
mvn --batch-mode --quiet --strict-checksums -Dstyle.color=never -Dmaven.repo.local="$repo_local" \
  dependency:get -Dartifact="$artifact" -Dtransitive=false >&2
zip=$repo_local/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip

tmp=$home.tmp.$$
rm -rf "$tmp"; mkdir -p "$tmp"
log "unpacking and running the one-time Quarkus build (${BUILD_OPTIONS[*]})"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$tmp"
inner=$tmp/keycloak-$KEYCLOAK_VERSION
chmod +x "$inner"/bin/*.sh
JAVA_OPTS="-Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1" \
  "$inner/bin/kc.sh" build "${BUILD_OPTIONS[@]}" >"$tmp/build.log" 2>&1 \
  || { log "kc.sh build failed:"; tail -30 "$tmp/build.log" >&2; exit 1; }
rm -rf "$inner/data"
touch "$inner/.complete"
rm -rf "$home"; mv "$inner" "$home"; rm -rf "$tmp"
# The zip stays in the Maven repository only as long as needed: the unpacked tree is the cache.
rm -f "$zip"
log "Keycloak $KEYCLOAK_VERSION ready in $home ($(( $(date +%s) - start ))s)"
echo "$home"
