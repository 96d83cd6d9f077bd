#!/usr/bin/env bash
# The one prepared script a session with a CUDA card runs (docs/gpu.md), from the repository root:
#   OUT=/some/folder bash scripts/gpu_session.sh
# On the lent device machine: run(command="bash scripts/gpu_session.sh", timeout_s=600). Its python3 holds a
# CUDA torch; pandas, scipy, matplotlib, hypothesis, pytest and tqdm are there, so the tree runs from PYTHONPATH.
# Writes to $OUT (at most 8 files come back): env.txt, cuda_tests.log, bench.json, bench.txt, reproduce.log,
# full.tar.gz (figures/, REPORT.md, verdicts.json of the full-budget run). Each stage has its own time limit so
# one slow stage cannot starve the rest; the full reproduction is resumable (re-run with the same --out).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:?set OUT to a folder for the results}"
FULL="${FULL:-/tmp/theory-sim-full}"
PY="${PY:-python3}"
mkdir -p "$OUT"
{
  date -u
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. the CUDA-only tests: captured step vs eager, TF32 (skipped on CPU everywhere else)
timeout 150 "$PY" -m pytest -q -p no:cacheprovider tests/test_graphs.py tests/test_precision.py 2>&1 | tee "$OUT/cuda_tests.log"

# 2. bench: every row eager and captured in one run, the targets, the 20 x 20 x 3-seed resonance diagram
timeout 200 "$PY" -m theory_sim.cli bench --device cuda --graph --sizes 1,8,64,256 --methods ba,topk --seconds 1 \
  --no-grid --diagram 20 --json > "$OUT/bench.json" 2> "$OUT/bench.txt"
if [ -s "$OUT/bench.json" ]; then
  "$PY" - "$OUT/bench.json" <<'PYEOF' | tee -a "$OUT/bench.txt"
import json, sys
from theory_sim.bench import format_bench
print(format_bench(json.load(open(sys.argv[1]))))
PYEOF
fi

# 3. the full budget, captured where it can be, into figures/full/ form
timeout 420 "$PY" -m theory_sim.cli reproduce --budget full --device cuda --graph --out "$FULL" --no-progress \
  > "$OUT/reproduce.log" 2>&1
echo "reproduce exit $?" >> "$OUT/reproduce.log"
tail -5 "$OUT/reproduce.log"
if [ -d "$FULL/figures" ]; then
  tar -czf "$OUT/full.tar.gz" -C "$FULL/figures" .
fi
