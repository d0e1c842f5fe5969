#!/usr/bin/env bash
# Runs one Rasa process in the foreground, for `make up` and the test bed.
#
# Usage: hack/rasa-run.sh actions   the action server (rasa-sdk) on RASA_ACTIONS_PORT (5055)
#        hack/rasa-run.sh server    the Rasa server (REST channel + HTTP API) on RASA_PORT (5005)
#
# Env (all optional):
#   RASA_HOST                 interface to bind (127.0.0.1)
#   RASA_PORT / RASA_ACTIONS_PORT
#   RASA_ACTION_ENDPOINT_URL  where the server finds the action server
#                             (http://127.0.0.1:$RASA_ACTIONS_PORT/webhook)
#   RASA_TRACKER_DB_URL       postgresql://user:password@host:port/db  -> SQL tracker store
#                             (or host1:port1,host2:port2 with ?target_session_attrs=read-write:
#                             the store follows a promoted replica; the database must exist)
#   RASA_LOCK_REDIS_URL       redis://[:password@]host:port/db          -> Redis lock store
#   RASA_LOCK_REDIS_SENTINELS host:port,... of Sentinels (the lock store then follows failovers;
#                             RASA_LOCK_REDIS_URL still gives the password and db)
#   RASA_LOCK_REDIS_SENTINEL_MASTER  the Sentinels' name of the primary (mymaster)
#     (or the RASA_TRACKER_DB_* / RASA_LOCK_REDIS_* parts read by rasa/endpoints.yml). With
#     neither, the server uses rasa/endpoints.local.yml: in-memory stores, one process only.
#   RASA_MODEL                a model archive (default: hack/rasa-train.sh's cached model)
#   DATAJUD_BASE_URL, DATAJUD_API_KEY, KNOWLEDGE_DIR   read by the action server
set -euo pipefail
rasa_script=rasa-run
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/rasa-env.sh
source "$repo/hack/rasa-env.sh"

host=${RASA_HOST:-127.0.0.1}
port=${RASA_PORT:-5005}
actions_port=${RASA_ACTIONS_PORT:-5055}

# Splits a URL into the parts rasa/endpoints.yml reads (Rasa's SQL tracker store takes host,
# port, user, ... separately). Python does the parsing: it handles escaping in passwords.
export_store_parts() {
  eval "$(python - <<'EOF'
import os, shlex
from urllib.parse import unquote, urlsplit

def emit(name, value):
    print(f"export {name}={shlex.quote(str(value))}")

db = os.environ.get("RASA_TRACKER_DB_URL")
if db and "," in urlsplit(db).netloc:
    # Several hosts (libpq's host1:port1,host2:port2): hand the tracker store one SQLAlchemy
    # URL naming each, keeping target_session_attrs, so it finds the writable server.
    url = urlsplit(db)
    credentials, _, hosts = url.netloc.rpartition("@")
    query = "&".join([*(f"host={h}" for h in hosts.split(",")), *([url.query] if url.query else [])])
    emit("RASA_TRACKER_DB_HOST", f"postgresql://{credentials}@{url.path}?{query}")
    emit("RASA_TRACKER_DB_PORT", 5432)
    user, _, password = credentials.partition(":")
    emit("RASA_TRACKER_DB_USER", unquote(user))
    emit("RASA_TRACKER_DB_PASSWORD", unquote(password))
    emit("RASA_TRACKER_DB_NAME", url.path.lstrip("/"))
    emit("RASA_TRACKER_DB_LOGIN_DB", "")  # the database must exist: created on the primary
elif db:
    url = urlsplit(db)
    emit("RASA_TRACKER_DB_HOST", url.hostname or "127.0.0.1")
    emit("RASA_TRACKER_DB_PORT", url.port or 5432)
    emit("RASA_TRACKER_DB_USER", unquote(url.username or "postgres"))
    emit("RASA_TRACKER_DB_PASSWORD", unquote(url.password or ""))
    emit("RASA_TRACKER_DB_NAME", url.path.lstrip("/") or "rasa")
    emit("RASA_TRACKER_DB_LOGIN_DB", os.environ.get("RASA_TRACKER_DB_LOGIN_DB", "postgres"))
redis = os.environ.get("RASA_LOCK_REDIS_URL")
if redis:
    url = urlsplit(redis)
    emit("RASA_LOCK_REDIS_HOST", url.hostname or "127.0.0.1")
    emit("RASA_LOCK_REDIS_PORT", url.port or 6379)
    emit("RASA_LOCK_REDIS_PASSWORD", unquote(url.password or ""))
    emit("RASA_LOCK_REDIS_DB", url.path.lstrip("/") or "0")
EOF
)"
}

case ${1:-} in
  actions)
    cd "$rasa_dir"
    rasa_log "action server on $host:$actions_port"
    # rasa-sdk binds to SANIC_HOST (it has no --interface flag).
    SANIC_HOST=$host exec python -m rasa_sdk --actions actions --port "$actions_port"
    ;;
  server)
    export_store_parts
    export RASA_LOCK_REDIS_SENTINELS=${RASA_LOCK_REDIS_SENTINELS:-}
    export RASA_LOCK_REDIS_SENTINEL_MASTER=${RASA_LOCK_REDIS_SENTINEL_MASTER:-mymaster}
    export RASA_ACTION_ENDPOINT_URL=${RASA_ACTION_ENDPOINT_URL:-http://127.0.0.1:$actions_port/webhook}
    endpoints=endpoints.yml
    if [[ -z ${RASA_TRACKER_DB_HOST:-} || -z ${RASA_LOCK_REDIS_HOST:-} ]]; then
      rasa_log "no tracker/lock store configured: in-memory stores (endpoints.local.yml)"
      endpoints=endpoints.local.yml
    fi
    model=${RASA_MODEL:-$("$repo/hack/rasa-train.sh")}
    cd "$rasa_dir"
    rasa_log "Rasa server on $host:$port with $(basename "$model") and $endpoints"
    # On 127.0.0.1 the API stays open for the test bed and the benchmarks; RASA_AUTH_TOKEN
    # closes it as the image does.
    auth=()
    [[ -n ${RASA_AUTH_TOKEN:-} ]] && auth=(--auth-token "$RASA_AUTH_TOKEN")
    # serving = Rasa's command line with the project's measured hot-path fixes (rasa/serving/).
    exec python -m serving run --enable-api "${auth[@]}" --interface "$host" --port "$port" --model "$model" \
      --endpoints "$endpoints" --credentials credentials.yml
    ;;
  *)
    echo "usage: $0 actions|server" >&2
    exit 2
    ;;
esac
