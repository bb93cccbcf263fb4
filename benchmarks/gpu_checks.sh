#!/usr/bin/env bash
# The GPU measurements the open goals need, as one prepared script per device call, most
# important first; each step has its own time limit so one slow step cannot eat the others.
#
#   bash benchmarks/gpu_checks.sh kernels   # tests on GPU (Pallas compiled for real, serial_linalg), kernel tiles, PPO vs rejax
#   bash benchmarks/gpu_checks.sh trainers  # SAC vs brax, PPO vs brax on dmc and on brax/ant
#   GPU_CHECKS_QUICK=1 bash benchmarks/gpu_checks.sh kernels   # tiny sizes: checks the commands on CPU
#
# Logs go to $OUT (the device tool's folder; ./gpu_checks_out when unset), one file per step.
# Wheels in .whl/ (see docs/benchmarks.md) are installed first when present.
set -u
cd "$(dirname "$0")/.."
PART="${1:?usage: gpu_checks.sh kernels|trainers}"
OUT="${OUT:-gpu_checks_out}"
mkdir -p "$OUT"
QUICK="${GPU_CHECKS_QUICK:-0}"
PYTHON="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ "$QUICK" = 0 ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

# step NAME SECONDS COMMAND...: runs COMMAND under a time limit, output to $OUT/NAME.log and stdout.
step() {
    local name="$1" limit="$2"
    shift 2
    echo "=== $name (limit ${limit}s): $*" | tee "$OUT/$name.log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$OUT/$name.log"
}

"$PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())" | tee "$OUT/device.log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee -a "$OUT/device.log"

if [ "$PART" = kernels ]; then
    step tests 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_serial_linalg.py tests/test_forgetting_attention.py
    if [ "$QUICK" = 1 ]; then
        shape=(--batch 1 --heads 2 --head-dim 32 --seq-lens 128 --repeats 1 --no-acp-table)
    else
        shape=(--batch 2 --heads 16 --head-dim 128 --seq-lens 4096 16384 --repeats 10 --no-acp-table)
    fi
    # forward-kernel tiles: the default (128x64, 4 warps, 2 stages) first, then larger tiles
    step attention 200 bash -c "
        $PYTHON benchmarks/forgetting_attention.py ${shape[*]} --variants pallas dpa-cudnn &&
        $PYTHON benchmarks/forgetting_attention.py ${shape[*]} --variants pallas --fwd-only --block-q 128 --block-k 128 --num-warps 8 --num-stages 2 &&
        $PYTHON benchmarks/forgetting_attention.py ${shape[*]} --variants pallas --fwd-only --block-q 128 --block-k 64 --num-warps 4 --num-stages 3 &&
        $PYTHON benchmarks/forgetting_attention.py ${shape[*]} --variants pallas --fwd-only --block-q 64 --block-k 64 --num-warps 4 --num-stages 3"
    if [ "$QUICK" = 1 ]; then steps=16384; else steps=500000; fi
    step ppo_vs_rejax 150 "$PYTHON" benchmarks/ppo_vs_rejax.py --env CartPole-v1 --env Breakout-MinAtar \
        --total-steps "$steps" --num-envs 64 --repeats 3
elif [ "$PART" = trainers ]; then
    if [ "$QUICK" = 1 ]; then
        sac=(--total-steps 2048 --min-replay 1024 --num-envs 64 --utd 1)
        ppo=(--total-steps 30720 --num-envs 64 --unroll 8)
    else
        sac=()
        ppo=(--total-steps 2000000)
    fi
    step sac_vs_brax 200 "$PYTHON" benchmarks/sac_vs_brax.py "${sac[@]}"
    step ppo_vs_brax_dmc 150 "$PYTHON" benchmarks/ppo_vs_brax.py --env dmc/CartpoleBalance "${ppo[@]}"
    step ppo_vs_brax_ant 200 "$PYTHON" benchmarks/ppo_vs_brax.py --env brax/ant "${ppo[@]}"
else
    echo "unknown part $PART: kernels or trainers" >&2
    exit 2
fi
