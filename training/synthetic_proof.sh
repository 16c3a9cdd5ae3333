#!/usr/bin/env bash
# The paper's training chain on the synthetic world, end to end on the CPU: teacher, student stages 1-4, the
# steering stage's cross-testing (Table IV in miniature), then every head of the final student scored on a held-out
# drive beside trivial baselines. Writes docs/results_synthetic.md (or $DOC) and leaves the evaluation, the baselines
# and every stage's validation curve under $OUT.
#
# The teacher (two phases) is needed only by stage 4, so it trains beside stages 1-3 (one thread each: the two cores of the
# machine this is sized for). Logs: $OUT/<stage>.log.
#
# Usage: training/synthetic_proof.sh [OUT]   (default OUT=results/synthetic_proof; runs go to runs/synthetic/)
# STEPS=N runs every student/teacher stage for N steps only (a check of the chain: it still writes runs/synthetic/,
# the steering stage keeps its length, and the numbers mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/synthetic_proof}
DOC=${DOC:-docs/results_synthetic.md}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread per process: two oversubscribe a 2-core machine
steps=()
[ -n "${STEPS:-}" ] && steps=(--steps "$STEPS")
if compgen -G "runs/synthetic/*/final.pt" > /dev/null || compgen -G "runs/synthetic/*/checkpoints" > /dev/null; then
    echo "runs/synthetic/ holds an earlier run: move or remove it first (the stages refuse to train over it)" >&2
    exit 2
fi
mkdir -p "$OUT"
start=$(date +%s)
teacher=""
stop_all() {  # a failed stage or a signal stops every training this script started, the teacher's included
    [ -z "$teacher" ] || pkill -P "$teacher" 2> /dev/null || true  # the teacher's running stage (python)
    pkill -P $$ 2> /dev/null || true  # the teacher's subshell and a running student stage
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stage() {  # train one stage, log it, and write its validation curve (the steering stage has folds, not a curve)
    local extra=("${steps[@]}")
    [ "$1" = steering_cv ] && extra=()
    echo "== $1 ($(date -u +%H:%M:%S))"
    # in the background and waited for, so that a signal reaches this script's trap at once
    "$PY" -m uni_encoder_core.cli train --config "training/configs/synthetic/$1.yaml" --no-progress "${extra[@]}" \
        > "$OUT/$1.log" 2>&1 &
    wait $! || { echo "$1 failed: $OUT/$1.log"; tail -5 "$OUT/$1.log"; return 1; }
    [ "$1" = steering_cv ] || "$PY" training/curves.py "runs/synthetic/$1" > "$OUT/curve_$1.md"
    echo "== $1 done ($(date -u +%H:%M:%S))"
}

(stage teacher_stage1 && stage teacher) &
teacher=$!
stage student_stage1
stage student_stage2
stage student_stage3
wait "$teacher"
stage student_stage4
stage steering_cv
echo "== held-out evaluation ($(date -u +%H:%M:%S))"
"$PY" training/synthetic_results.py --runs runs/synthetic --out "$OUT" --doc "$DOC" --started "$start"
echo "wall time $(( ($(date +%s) - start) / 60 )) min; results in $OUT and $DOC"
