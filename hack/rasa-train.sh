#!/usr/bin/env bash
# Trains the assistant's model only when its inputs changed, and prints the model's path.
#   ${XDG_CACHE_HOME:-~/.cache}/assistente-digital/rasa-models/<hash>.tar.gz
# <hash> covers rasa/config.yml, rasa/domain/, rasa/data/ and the Rasa venv (the pins).
#
# Usage: hack/rasa-train.sh            prints the model path (trains first if needed)
#        hack/rasa-train.sh --force    retrains even if the model exists
set -euo pipefail
rasa_script=rasa-train
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/rasa-env.sh
source "$repo/hack/rasa-env.sh"

hash=$(rasa_training_hash)
model=$models_dir/$hash.tar.gz
# One training per model hash at a time, even across checkouts sharing the cache.
mkdir -p "$models_dir"
exec {lock_fd}>"$models_dir/$hash.lock"
flock "$lock_fd"
if [[ -f $model && ${1:-} != --force ]]; then
  rasa_log "model up to date: $model"
  echo "$model"
  exit 0
fi
rasa_log "training model $hash (config + domain + data changed or first run)"
start=$(date +%s)
cd "$rasa_dir"
log_file=$repo/.local/rasa-train.log
mkdir -p "$repo/.local"
rasa train --config config.yml --domain domain --data data --out "$models_dir" \
  --fixed-model-name "$hash" >"$log_file" 2>&1 || { tail -40 "$log_file" >&2; exit 1; }
rasa_log "trained in $(( $(date +%s) - start ))s: $model"
echo "$model"
