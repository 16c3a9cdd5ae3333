#!/usr/bin/env bash
# The paper's training chain on the synthetic world, end to end on the CPU: teacher, student stages 1-4, the
# steering stage's cross-testing, then the held-out evaluation of the final student beside trivial baselines.
#
# UNTESTED AT FULL LENGTH: each recipe has been run on its own (stage 1: 1,800 steps, ~17 min on a shared 2-core
# machine), the chain as a whole has not. It does not yet write docs/results_synthetic.md; it leaves the evaluation
# tables, the baselines and every stage's validation curve under $OUT.
#
# Usage: training/synthetic_proof.sh [OUT]   (default OUT=results/synthetic_proof; runs go to runs/synthetic/)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/synthetic_proof}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread: two oversubscribe a shared 2-core machine
mkdir -p "$OUT"
start=$(date +%s)
for stage in teacher student_stage1 student_stage2 student_stage3 student_stage4 steering_cv; do
    echo "== $stage ($(date -u +%H:%M:%S))"
    "$PY" -m uni_encoder_core.cli train --config "training/configs/synthetic/$stage.yaml" --no-progress
done
for stage in teacher student_stage1 student_stage2 student_stage3 student_stage4; do
    "$PY" training/curves.py "runs/synthetic/$stage" > "$OUT/curve_$stage.md"
done
"$PY" -m uni_encoder_core.cli eval --checkpoint runs/synthetic/student_stage4/final.pt --dataset synthetic \
    --seed 1000 --frames 128 --folds 4 --out "$OUT/eval_student"
"$PY" training/synthetic_baselines.py --seed 1000 --frames 128 > "$OUT/baselines.json"
echo "wall time $(( ($(date +%s) - start) / 60 )) min; results in $OUT"
