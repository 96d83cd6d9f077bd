#!/usr/bin/env bash
# The prepared script a session with a CUDA card runs (docs/gpu.md), from the repository root, in two calls that
# each fit one device call of at most 10 minutes:
#   OUT=/some/folder bash scripts/gpu_session.sh measure   # CUDA tests, bench with its targets, the TF32 check
#   OUT=/some/folder bash scripts/gpu_session.sh full      # reproduce --budget full --graph → full.tar.gz
# On the lent device machine: run(command="bash scripts/gpu_session.sh measure", timeout_s=600), then "full".
# Its python3 holds a CUDA torch; pandas, scipy, matplotlib, hypothesis, pytest and tqdm are there, so the tree
# runs from PYTHONPATH. At most 8 files come back from $OUT; each stage has its own time limit so one slow stage
# cannot starve the rest; the full reproduction is resumable (the same --out on the same machine).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:?set OUT to a folder for the results}"
PY="${PY:-python3}"
STAGE="${1:-measure}"
mkdir -p "$OUT"
{
  date -u
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

if [ "$STAGE" = measure ]; then
  # 1. the CUDA-only tests: the real capture vs the eager step for every method, TF32 (skipped everywhere else)
  timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m "not slow" tests/test_graphs.py tests/test_precision.py \
    2>&1 | tee "$OUT/cuda_tests.log"

  # 2. bench: every row eager and captured in one run, the targets, the 20 x 20 x 3-seed resonance diagram
  timeout 220 "$PY" -m theory_sim.cli bench --device cuda --graph --sizes 1,8,64,256 --methods ba,topk --seconds 1 \
    --no-grid --diagram 20 --json > "$OUT/bench.json" 2> "$OUT/bench.txt"
  if [ -s "$OUT/bench.json" ]; then
    "$PY" - "$OUT/bench.json" <<'PYEOF' | tee -a "$OUT/bench.txt"
import json, sys
from theory_sim.bench import format_bench
print(format_bench(json.load(open(sys.argv[1]))))
PYEOF
  fi

  # 3. the TF32 check (docs/gpu.md): resonance's quick budget captured, fp32 and tf32, boundaries side by side
  for p in fp32 tf32; do
    timeout 100 "$PY" -m theory_sim.cli reproduce --budget quick --only resonance --device cuda --graph \
      --precision "$p" --out "/tmp/ts-$p" --no-progress > /dev/null 2>> "$OUT/tf32.txt"
    { echo "== $p"; "$PY" -m theory_sim.cli boundary "/tmp/ts-$p/resonance"; } >> "$OUT/tf32.txt" 2>&1
  done
  cat "$OUT/tf32.txt"
elif [ "$STAGE" = full ]; then
  FULL="${FULL:-/tmp/theory-sim-full}"
  timeout 560 "$PY" -m theory_sim.cli reproduce --budget full --device cuda --graph --out "$FULL" --no-progress \
    > "$OUT/reproduce.log" 2>&1
  echo "reproduce exit $?" >> "$OUT/reproduce.log"
  tail -5 "$OUT/reproduce.log"
  if [ -d "$FULL/figures" ]; then
    tar -czf "$OUT/full.tar.gz" -C "$FULL/figures" .
  fi
else
  echo "stage must be measure or full, got $STAGE" >&2
  exit 2
fi
