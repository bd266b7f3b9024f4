#!/usr/bin/env bash
# Build (once) the isolated environment `make check-vllm` runs in: the pinned vLLM with its own
# CUDA build of torch, kept apart from .venv (whose CPU torch and newer transformers vLLM
# does not accept), plus the little of Lyre's stack its contract tests import.
# Usage: scripts/vllm_env.sh ENV_DIR VLLM_VERSION. Reused while its stamp matches.
set -euo pipefail
env_dir=$1
version=$2
python=${PYTHON:-python3.11}
wanted="vllm==${version} pytest pydantic-settings>=2.3 snac==1.2.1"

if [[ -f "$env_dir/.lyre-stamp" && "$(cat "$env_dir/.lyre-stamp")" == "$wanted" ]]; then
  exit 0
fi
echo "building $env_dir ($wanted): a few GB, a few minutes"
rm -rf "$env_dir"
"$python" -m venv "$env_dir"
"$env_dir/bin/pip" install --quiet --upgrade pip
# shellcheck disable=SC2086 # the requirements are words
"$env_dir/bin/pip" install --quiet $wanted
echo "$wanted" > "$env_dir/.lyre-stamp"
