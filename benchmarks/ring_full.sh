#!/usr/bin/env bash
# The ring study at the source's size in one call: 200 rows x 400 epochs, the four settings of the
# (α_D, α_G)-GAN paper's ring comparison x 50 seeds each, source form, evaluation and coverage curve included.
#   bash benchmarks/ring_full.sh OUT [extra gcann ring study options]
# writes OUT/ring-full/results.json, results.md and run.json (no state file, no figures). On CUDA it uses TF32
# matmuls and the fused Adam of the replayed step (RING_DEVICE=cpu runs it on the CPU, without them, for checks).
set -euo pipefail
out=${1:?usage: ring_full.sh OUT [gcann ring study options]}; shift
device=${RING_DEVICE:-cuda}
fast=()
[[ $device == cuda* ]] && fast=(--tf32 --fused-adam)
gcann ring study --seeds 50 --epochs 400 --settings "sat(1,1) sat(0.3,1) ns(1,1) ns(0.5,1.2)" --form source \
    --device "$device" "${fast[@]}" --no-figures --out "$out/ring-full" "$@"
