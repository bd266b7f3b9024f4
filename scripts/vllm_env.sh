#!/usr/bin/env bash
# Build (once) the isolated environment `make check-vllm` runs in: the pinned vLLM with its own
# CUDA build of torch, kept apart from .venv (whose CPU torch and newer transformers vLLM
# does not accept), plus the little of Lyre's stack its contract tests import.
# Usage: scripts/vllm_env.sh ENV_DIR VLLM_VERSION. vLLM is installed once (its stamp names the
# version); Lyre's small requirements are checked on every run, so adding one to `lyre_needs`
# costs a pip call, not a rebuild of several GB.
set -euo pipefail
env_dir=$1
version=$2
python=${PYTHON:-python3.11}
# What the adapter's import chain needs of pyproject.toml's dependencies (shared.infra.settings
# reaches shared.text, which says numbers with num2words).
lyre_needs="pytest pydantic-settings>=2.3 snac==1.2.1 num2words>=0.5.13"

if [[ ! -f "$env_dir/.lyre-stamp" || "$(head -c 200 "$env_dir/.lyre-stamp")" != vllm==${version}* ]]; then
  echo "building $env_dir (vllm==$version): a few GB, a few minutes"
  rm -rf "$env_dir"
  "$python" -m venv "$env_dir"
  "$env_dir/bin/pip" install --quiet --upgrade pip
  "$env_dir/bin/pip" install --quiet "vllm==${version}"
  echo "vllm==${version}" > "$env_dir/.lyre-stamp"
fi
# shellcheck disable=SC2086 # the requirements are words
"$env_dir/bin/pip" install --quiet $lyre_needs
