#!/usr/bin/env bash
# The prepared GPU check (docs/speed.md, "GPU"). Three ways to run it:
#
#   scripts/gpu_check.sh --prepare    here, with PyPI: wheels the GPU machine lacks -> .gpu/whl (Python 3.12,
#                                     manylinux x86-64) and the HH data -> .gpu/data; .gpu/ is git-ignored
#   scripts/gpu_check.sh              on the GPU machine (torch, transformers, accelerate, peft, safetensors
#                                     preinstalled, no network): install the carried wheels and rewardlab
#                                     without dependencies, then scripts/gpu_check.py (<= 8 min, one JSON line)
#   scripts/gpu_check.sh --dry-run    anywhere, in the current environment: the same steps at toy sizes
#
# Through the device tool: run `bash scripts/gpu_check.sh` with carry [".gpu"]; the JSON line also lands in
# $OUT/gpu_check.json when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=.gpu
# Not on the GPU image (its package list: docs/speed.md); versions as this project's .venv has them.
# MiniLM's package wheel (90 MB of fp32 weights) is over the 64 MiB a device call carries, so --prepare
# carries the model folder with bf16 weights (45 MB) and the GPU side writes it back as fp32 before use:
# every tool then starts from the same bf16-rounded weights.
WHEELS=(datasets dill multiprocess xxhash trl rich)

case "${1:-}" in
--prepare)
    py=${PYTHON:-.venv/bin/python}
    mkdir -p "$GPU/whl" "$GPU/data/hh-rlhf-harmless"
    specs=()
    for name in "${WHEELS[@]}"; do
        v=$("$py" -m pip show "$name" 2>/dev/null | awk '/^Version:/ {print $2}')
        specs+=("$name${v:+==$v}")
    done
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$GPU/whl" "${specs[@]}"
    cp ../shared/data/hh-rlhf-harmless/*.jsonl "$GPU/data/hh-rlhf-harmless/"
    "$py" scripts/gpu_check.py --copy-minilm "$GPU/minilm-bf16" --dtype bfloat16
    du -sh "$GPU"
    ;;
--dry-run)
    shift
    exec "${PYTHON:-.venv/bin/python}" scripts/gpu_check.py --dry-run "$@"
    ;;
*)
    site=/tmp/rewardlab-site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$GPU"/whl/*.whl
    export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"  # rewardlab from this tree, no dependencies
    # the benchmarks read ../shared/data beside the checkout: point that at the carried copy
    if [ ! -e ../shared/data/hh-rlhf-harmless/train.jsonl ]; then
        mkdir -p ../shared/data && ln -sfn "$PWD/$GPU/data/hh-rlhf-harmless" ../shared/data/hh-rlhf-harmless
    fi
    minilm=/tmp/rewardlab-minilm
    python3 scripts/gpu_check.py --copy-minilm "$minilm" --from "$GPU/minilm-bf16" --dtype float32
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    set +e
    python3 scripts/gpu_check.py --backbone "$minilm" "$@" | tee /tmp/gpu_check.out
    rc=${PIPESTATUS[0]}
    [ -n "${OUT:-}" ] && tail -n 1 /tmp/gpu_check.out > "$OUT/gpu_check.json"
    exit "$rc"
    ;;
esac
