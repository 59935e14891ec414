#!/usr/bin/env bash
# The accelerator run: what probing costs per step, and how many kernels a
# probe step launches in each probe mode, on JAX's default device.
#
#   bash benchmarks/accelerator.sh OUT_DIR [--quick]
#
# Needs jax (with the accelerator's plugin), optax and flax, and no network;
# runs this checkout's code (PYTHONPATH=.) from whatever directory. Writes
# under OUT_DIR:
#
#   device.txt          the device JAX runs on (and `nvidia-smi -L`, if any)
#   kernel_counts.json  python -m benchmarks.kernel_count: kernels and matrix
#   kernel_counts.md      products of a forward pass, a probe step and whole
#   hlo/                  steps in each probe mode; the HLO modules it counted
#   step_cost.json      python -m benchmarks.step_cost: step times and memory
#   step_cost.md          against SGD, the line search and each other
#
# The full run takes a few minutes on a GPU; each part is stopped after its
# time limit below, so that the whole stays under 8 minutes, and the other
# part still runs. --quick counts and times the MLP only, at the small size
# of the benchmarks' quick modes: a check of the plumbing, which CI runs on
# CPU in 10 to 20 seconds.
set -euo pipefail

usage="usage: bash benchmarks/accelerator.sh OUT_DIR [--quick]"
if [[ $# -lt 1 || $1 == -* ]]; then
  echo "$usage" >&2
  exit 2
fi
out=$1
shift
quick=""
models=mlp,cnn,transformer
count_seconds=150
cost_seconds=300
for arg in "$@"; do
  case $arg in
    --quick)
      quick=--quick
      models=mlp
      ;;
    *)
      echo "unknown option $arg; $usage" >&2
      exit 2
      ;;
  esac
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

python -c '
import jax
d = jax.devices()[0]
print(f"device: {d.platform} ({d.device_kind}), {jax.device_count()} of them;"
      f" jax {jax.__version__}")
' | tee "$out/device.txt"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi -L | tee -a "$out/device.txt" || true
fi

failed=0
SECONDS=0
echo "== kernel counts (at most ${count_seconds} s)"
timeout "$count_seconds" python -m benchmarks.kernel_count \
  --out "$out" --models "$models" $quick | tee "$out/kernel_counts.md" \
  || failed=1
echo "== step cost (at most ${cost_seconds} s; ${SECONDS} s so far)"
timeout "$cost_seconds" python -m benchmarks.step_cost \
  --models "$models" --json "$out/step_cost.json" $quick \
  | tee "$out/step_cost.md" || failed=1
echo "== done in ${SECONDS} s; results in $out"
exit "$failed"
