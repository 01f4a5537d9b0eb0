#!/usr/bin/env bash
# One GPU session, at most 8 minutes on an H200 (every step is time-bounded): the device correctness check
# (bench.check_device: pack = solo = CPU, CUDA graphs = eager byte for byte, resume), the packed-convolution
# table (bench.bench_conv, written to lowrank/models/conv_table.json so that the engine timed next uses it), a
# profile of one ResNet-18 pack step, eager and graph (bench.profile_step),
# then the plain / N-process / fused / graph throughput tables with utilisation, the resources fit and the projected
# paper GPU-hours (bench.bench_gpu).
# Run from the repository root:
#
#   bench/gpu_session.sh            # on the GPU; PYTHON=... picks the interpreter (default .venv/bin/python)
#   bench/gpu_session.sh --smoke    # the same steps on the CPU with tiny models: shows the script runs
#
# The log (and a copy of the written table) go to $OUT when set, else to the current directory.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=${OUT:-.}
mkdir -p "$OUT"
if [ "${1:-}" = "--smoke" ]; then
  CHECK=(--device cpu --ks 1 --steps 2); CONV=(--device cpu --tiny --repeats 1 --iters 1)
  PROFILE=(--device cpu --tiny --k 2 --batch 4 --steps 2)
  GPU=(--device cpu --tiny --only resnet18_leaky --procs 2); TABLE=$OUT/conv_table.json; CONV+=(--write "$TABLE")
else
  CHECK=(--ks 8); CONV=(--budget-s 55 --repeats 3 --write); PROFILE=(--batch 16 --k 8)
  GPU=(--budget-s 185); TABLE=lowrank/models/conv_table.json
fi

step() {  # step SECONDS MODULE ARGS...: run one benchmark module, killed after SECONDS
  local limit=$1; shift
  echo "== $PY -m $* (at most $limit s), $(date -u +%H:%M:%S)"
  timeout --kill-after=10 "$limit" "$PY" -m "$@"
  echo "== exit status $?"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  git log -1 --format='commit %h: %s' 2>/dev/null
  step 110 bench.check_device "${CHECK[@]}"
  step 80 bench.bench_conv "${CONV[@]}"
  [ "$TABLE" -ef "$OUT/conv_table.json" ] || cp "$TABLE" "$OUT/conv_table.json"
  step 40 bench.profile_step "${PROFILE[@]}"
  step 240 bench.bench_gpu "${GPU[@]}"
} 2>&1 | tee "$OUT/gpu_session.log"
