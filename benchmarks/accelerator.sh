#!/usr/bin/env bash
# The accelerator run: what probing costs per step (benchmarks.step_cost)
# and how many kernels a probe step launches in each probe mode
# (benchmarks.kernel_count), on JAX's default device:
#
#   bash benchmarks/accelerator.sh OUT_DIR [--quick]
#
# Needs jax (with the accelerator's plugin), optax and flax, and no network;
# runs this checkout's code from any directory. Writes device.txt,
# kernel_count.{json,md}, hlo/ and step_cost.{json,md} under OUT_DIR. Each
# part stops at its time limit below, so that the whole stays under 8
# minutes; --quick does the MLP only, small: the plumbing check CI runs on CPU.
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
  --out "$out" --hlo "$out/hlo" --models "$models" $quick \
  || failed=1
echo "== step cost (at most ${cost_seconds} s; ${SECONDS} s so far)"
timeout "$cost_seconds" python -m benchmarks.step_cost \
  --out "$out" --models "$models" $quick || failed=1
echo "== done in ${SECONDS} s; results in $out"
exit "$failed"
