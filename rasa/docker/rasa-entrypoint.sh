#!/bin/sh
# Entry point of the Rasa server image. Uses the model baked into the image, or downloads
# RASA_MODEL_URL at start (optionally checked against RASA_MODEL_SHA256) so a new model can be
# rolled out without a new image. Picks endpoints.yml (PostgreSQL tracker store + Redis lock
# store, from RASA_TRACKER_DB_* / RASA_LOCK_REDIS_* env vars) unless no tracker DB is configured.
set -eu
model=${RASA_MODEL:-/app/models/assistente.tar.gz}
if [ -n "${RASA_MODEL_URL:-}" ]; then
  model=/tmp/model.tar.gz
  echo "downloading the model from RASA_MODEL_URL" >&2
  python - "$model" <<'PY'
import hashlib, os, sys, urllib.request
target = sys.argv[1]
urllib.request.urlretrieve(os.environ["RASA_MODEL_URL"], target)
expected = os.environ.get("RASA_MODEL_SHA256", "")
if expected:
    actual = hashlib.sha256(open(target, "rb").read()).hexdigest()
    if actual != expected:
        sys.exit(f"model checksum mismatch: expected {expected}, got {actual}")
PY
fi
# Optional in endpoints.yml, but Rasa refuses unset ${VARS}: default them to a single host.
export RASA_LOCK_REDIS_SENTINELS="${RASA_LOCK_REDIS_SENTINELS:-}"
export RASA_LOCK_REDIS_SENTINEL_MASTER="${RASA_LOCK_REDIS_SENTINEL_MASTER:-mymaster}"
endpoints=endpoints.yml
if [ -z "${RASA_TRACKER_DB_HOST:-}" ] || [ -z "${RASA_LOCK_REDIS_HOST:-}" ]; then
  echo "RASA_TRACKER_DB_HOST/RASA_LOCK_REDIS_HOST unset: in-memory stores (single replica only)" >&2
  endpoints=endpoints.local.yml
fi
# The HTTP API (conversations, trackers, model) answers only with RASA_AUTH_TOKEN; without a
# token it stays off. The REST channel and "/" (the probes) need neither.
set -- --endpoints "$endpoints" --credentials credentials.yml "$@"
if [ -n "${RASA_AUTH_TOKEN:-}" ]; then
  set -- --enable-api --auth-token "$RASA_AUTH_TOKEN" "$@"
else
  echo "RASA_AUTH_TOKEN unset: Rasa's HTTP API stays off" >&2
fi
# serving = Rasa's command line with the project's measured hot-path fixes (serving/patches.py).
exec python -m serving run --port "${RASA_PORT:-5005}" --model "$model" "$@"
