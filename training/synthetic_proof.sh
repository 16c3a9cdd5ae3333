#!/usr/bin/env bash
# The paper's training chain on the synthetic world, end to end on the CPU: teacher, student stages 1-4, the
# steering stage's cross-testing (Table IV in miniature), then every head of the final student scored on a held-out
# drive beside trivial baselines. Writes docs/results_synthetic.md (or $DOC) and leaves the evaluation, the baselines
# and every stage's validation curve under $OUT.
#
# Usage: training/synthetic_proof.sh [OUT]   (default OUT=results/synthetic_proof; runs go to runs/synthetic/)
# STEPS=N runs every student/teacher stage for N steps only (a smoke test of the chain; results are meaningless).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/synthetic_proof}
DOC=${DOC:-docs/results_synthetic.md}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread: two oversubscribe a shared 2-core machine
steps=()
[ -n "${STEPS:-}" ] && steps=(--steps "$STEPS")
mkdir -p "$OUT"
start=$(date +%s)
for stage in teacher student_stage1 student_stage2 student_stage3 student_stage4; do
    echo "== $stage ($(date -u +%H:%M:%S))"
    "$PY" -m uni_encoder_core.cli train --config "training/configs/synthetic/$stage.yaml" --no-progress "${steps[@]}"
    "$PY" training/curves.py "runs/synthetic/$stage" > "$OUT/curve_$stage.md"
done
echo "== steering_cv ($(date -u +%H:%M:%S))"
"$PY" -m uni_encoder_core.cli train --config training/configs/synthetic/steering_cv.yaml --no-progress
echo "== held-out evaluation ($(date -u +%H:%M:%S))"
"$PY" training/synthetic_results.py --runs runs/synthetic --out "$OUT" --doc "$DOC" --started "$start"
echo "wall time $(( ($(date +%s) - start) / 60 )) min; results in $OUT and $DOC"
