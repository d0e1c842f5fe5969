# Sourced by the hack/rasa-*.sh scripts: where Rasa's venv, models and caches live, and the
# environment every Rasa command runs with. Nothing here writes inside the repository.
# shellcheck shell=bash
repo=${repo:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
rasa_dir=$repo/rasa
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital
models_dir=$cache_root/rasa-models
rasa_venv=$("$repo/hack/rasa-setup.sh")
export PATH=$rasa_venv/bin:$PATH
# The app ⇄ Rasa contract (stdlib only) is imported from the checkout, as the images copy it.
export PYTHONPATH=$repo/contract/src${PYTHONPATH:+:$PYTHONPATH}
# No network at run time: Rasa's telemetry would call home on every command.
export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export TF_CPP_MIN_LOG_LEVEL=2
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
# Rasa's training fingerprint cache defaults to ./.rasa/cache inside the project. One cache per
# pipeline config: Rasa 3.6 restores a cached LogisticRegressionClassifier into a node of another
# name when the pipeline's shape changed, and the model then fails to load (its .skops file is
# named after the old node).
config_key=$(sha256sum "$rasa_dir/config.yml" | cut -c1-12)
export RASA_CACHE_DIRECTORY=$cache_root/rasa-train-cache/$config_key
mkdir -p "$models_dir" "$RASA_CACHE_DIRECTORY"

rasa_log() { printf '[%s] %s\n' "${rasa_script:-rasa}" "$*" >&2; }

# Content hash of everything a trained model depends on: config, domain, data, the custom NLU
# components, and the venv (i.e. the pins).
rasa_training_hash() {
  (
    cd "$rasa_dir" || exit 1
    { find config.yml domain data components -type f \( -name '*.yml' -o -name '*.py' \) | LC_ALL=C sort | xargs sha256sum
      basename "$rasa_venv"; } | sha256sum | cut -c1-16
  )
}
