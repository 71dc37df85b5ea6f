#!/usr/bin/env bash
# One short GPU check (< 8 minutes on one GPU): the CUDA-marked tests, the attribution speed bench on
# CUDA (per-text vs batched Captum at m = 50, peak memory per row, peers where installed), and a
# two-process batch explain on one GPU checked against one process.
#
# Usage: bash bench/gpu_check.sh GLUE_DIR      (GLUE_DIR holds SST-2/dev.tsv)
# Writes bench/results/gpu/{attribution_speed.json,two_process.txt}; prints what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
GLUE="${1:?usage: bash bench/gpu_check.sh GLUE_DIR (with SST-2/dev.tsv)}"
OUT=bench/results/gpu
mkdir -p "$OUT"
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device visible')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"

echo "== CUDA tests"
timeout 180 python3 -m pytest tests -m cuda -q -p no:cacheprovider

echo "== speed bench on CUDA"
timeout 240 python3 bench/attribution_speed.py --data-dir "$GLUE" --device cuda --repeats 3 --sentences 256 \
  --peer-sentences 256 --out "$OUT/attribution_speed.json"

echo "== two processes on one GPU vs one process"
TMP=$(mktemp -d)
head -n 513 "$GLUE/SST-2/dev.tsv" > "$TMP/dev.tsv"
MODEL=$(python3 -c "import attribkit; print(attribkit.default_model_path())")
common=(explain --model "$MODEL" --input "$TMP/dev.tsv" --method fast_ig --steps 50 --no-progress)
start=$(date +%s.%N)
timeout 120 python3 -m torch.distributed.run --nproc_per_node 2 --master_port 29561 -m attribkit "${common[@]}" \
  --device cuda --out "$TMP/two.jsonl"
mid=$(date +%s.%N)
timeout 120 python3 -m attribkit "${common[@]}" --device cuda --out "$TMP/one.jsonl"
end=$(date +%s.%N)
python3 - "$TMP" "$start" "$mid" "$end" <<'PY' | tee "$OUT/two_process.txt"
import sys
import numpy as np
import attribkit as ak
tmp, start, mid, end = sys.argv[1], *map(float, sys.argv[2:])
two, one = ak.load(f"{tmp}/two.jsonl"), ak.load(f"{tmp}/one.jsonl")
diff = max(float(np.abs(a.scores - b.scores).max()) for a, b in zip(two, one))
print(f"records {len(two)} / {len(one)}; same texts in order: {[r.text for r in two] == [r.text for r in one]}; "
      f"max |score difference| {diff:.3g}; two processes {mid - start:.1f} s, one process {end - mid:.1f} s (CLI wall time)")
PY
rm -rf "$TMP"
