#!/usr/bin/env bash
# The Rasa quality gates of `make test`:
#   1. rasa data validate (domain, data and config agree; no story conflicts), failing on every
#      warning except responses uttered only by custom actions (rasa/scripts/validate_gate.py)
#   2. NLU on a held-out split: the NLU data is split 80/20 with a fixed seed, a model trained on
#      the 80 % is evaluated on the 20 %; intent and entity F1 must reach the thresholds below
#   3. dialogue: rasa test core on rasa/tests/test_stories.yml (text + intent + actions),
#      failing on any prediction error
#   4. the actions' unit tests (pytest, with a local fake DataJud)
# Models are cached by content hash, so a warm run only evaluates.
#
# Thresholds (justified in docs/rasa.md): intent F1 >= 0.80, entity F1 >= 0.95.
set -euo pipefail
rasa_script=rasa-quality
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/rasa-env.sh
source "$repo/hack/rasa-env.sh"

INTENT_F1_MIN=${RASA_INTENT_F1_MIN:-0.80}
ENTITY_F1_MIN=${RASA_ENTITY_F1_MIN:-0.95}
SPLIT_SEED=42
results=$repo/.local/rasa-results
mkdir -p "$results"
cd "$rasa_dir"

rasa_log "1/4 rasa data validate"
rasa data validate --domain domain --data data --config config.yml \
  >"$results/validate.log" 2>&1 || { cat "$results/validate.log" >&2; exit 1; }
python "$rasa_dir/scripts/validate_gate.py" "$results/validate.log"

rasa_log "2/4 NLU held-out evaluation"
split_hash=$(rasa_training_hash)-split$SPLIT_SEED
split_dir=$cache_root/rasa-nlu-split/$split_hash
split_model=$models_dir/nlu-$split_hash.tar.gz
if [[ ! -f $split_dir/test_data.yml ]]; then
  mkdir -p "$split_dir"
  rasa data split nlu --nlu data/nlu --training-fraction 0.8 --random-seed "$SPLIT_SEED" \
    --out "$split_dir" >"$results/split.log" 2>&1
fi
if [[ ! -f $split_model ]]; then
  rasa_log "training the held-out NLU model"
  rasa train nlu --config config.yml --nlu "$split_dir/training_data.yml" \
    --out "$models_dir" --fixed-model-name "nlu-$split_hash" >"$results/train-split.log" 2>&1 \
    || { tail -40 "$results/train-split.log" >&2; exit 1; }
fi
rm -rf "$results/nlu"
rasa test nlu --nlu "$split_dir/test_data.yml" --model "$split_model" --out "$results/nlu" \
  >"$results/test-nlu.log" 2>&1 || { tail -40 "$results/test-nlu.log" >&2; exit 1; }
python "$rasa_dir/scripts/nlu_gate.py" "$results/nlu" --intent-f1 "$INTENT_F1_MIN" \
  --entity-f1 "$ENTITY_F1_MIN"

rasa_log "3/4 dialogue test stories"
model=$("$repo/hack/rasa-train.sh")
rm -rf "$results/core"
RASA_ACTION_ENDPOINT_URL=http://127.0.0.1:5055/webhook \
  rasa test core --stories tests/test_stories.yml --model "$model" \
  --endpoints endpoints.local.yml --fail-on-prediction-errors --out "$results/core" \
  >"$results/test-core.log" 2>&1 || {
    tail -40 "$results/test-core.log" >&2
    [[ -f $results/core/failed_test_stories.yml ]] && cat "$results/core/failed_test_stories.yml" >&2
    exit 1
  }
grep -E "Correct:|Accuracy:" "$results/test-core.log" | head -4 >&2 || true

rasa_log "4/4 actions unit tests"
cd "$repo"
python -m pytest rasa/tests -q -p no:cacheprovider
rasa_log "all Rasa quality gates passed (reports in $results)"
