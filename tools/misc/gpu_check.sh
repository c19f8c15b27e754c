#!/usr/bin/env bash
# The GPU check of issue #21 in one command: the CUDA tests (tests/test_cuda: every demo config
# trained in fp32 and with --amp, resumed, evaluated with budgets and real early exit; SAR sparse ==
# dense; the step-major executor; the CUDA timer; the benchmark tools) and the four speed benchmarks
# at the papers' batch sizes on the GPU (tools/analysis_tools/benchmark.py --preset gpu --device cuda,
# one part per family, then the step-wise families' throughput mode with their step times), written
# to one markdown report. Each part has its own time limit, so that the whole check stays under 8
# minutes on one GPU; a part that runs out of time or that a tool does not support yet is reported as
# "not run: <reason>" and the check goes on.
#
# Usage: bash tools/misc/gpu_check.sh [REPORT.md]
#   REPORT.md          where the report goes (default: $OUT/gpu_check.md when $OUT is set, else
#                      work_dirs/gpu_check/gpu_check.md); the parts' logs go next to it
#   MMDYN_PYTHON=...   use this interpreter instead of setting up .venv (tools/setup_env.sh)
#   GPU_CHECK_BUDGET_S total seconds for all parts (default 450)
#
# Without a GPU (no nvidia-smi, no GPU listed, or torch sees none) it prints why and exits 0 with
# nothing done. Exit status otherwise: 0 when every part that ran passed, 1 when one failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
START=$(date +%s)
BUDGET_S="${GPU_CHECK_BUDGET_S:-450}"

nothing_to_do() {
    echo "gpu_check: no GPU here ($1); nothing done."
    exit 0
}

command -v nvidia-smi >/dev/null 2>&1 || nothing_to_do "nvidia-smi not found"
GPUS="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
[ -n "$GPUS" ] || nothing_to_do "nvidia-smi lists no GPU"

REPORT="${1:-${OUT:+$OUT/gpu_check.md}}"
REPORT="${REPORT:-work_dirs/gpu_check/gpu_check.md}"
DIR="$(dirname "$REPORT")/gpu_check_logs"
mkdir -p "$DIR"
FAILED=0
SECTIONS=()

remaining() { echo $((BUDGET_S - ($(date +%s) - START))); }

# run_part NAME CAP_S COMMAND...: run with a time limit of min(CAP_S, time left); sets PART_RC,
# PART_S and PART_LOG
run_part() {
    local name="$1" cap="$2"
    shift 2
    local left
    left=$(remaining)
    PART_LOG="$DIR/$name.log"
    if [ "$left" -lt 20 ]; then
        PART_RC=125
        PART_S=0
        echo "not run: no time left in the ${BUDGET_S} s budget" >"$PART_LOG"
        return
    fi
    [ "$cap" -gt "$left" ] && cap=$left
    PART_CAP=$cap
    local t0
    t0=$(date +%s)
    echo "[gpu_check] $name (at most ${cap} s)"
    timeout --signal=TERM --kill-after=10 "$cap" "$@" >"$PART_LOG" 2>&1
    PART_RC=$?
    PART_S=$(($(date +%s) - t0))
}

# --- set-up (the README's: tools/setup_env.sh), unless an interpreter is given
if [ -n "${MMDYN_PYTHON:-}" ]; then
    PY="$MMDYN_PYTHON"
else
    run_part setup 240 bash tools/setup_env.sh
    if [ "$PART_RC" -ne 0 ]; then
        echo "gpu_check: tools/setup_env.sh failed (exit $PART_RC, log $PART_LOG)"
        tail -20 "$PART_LOG"
        exit 1
    fi
    PY="$ROOT/.venv/bin/python"
fi
read -r TORCH_VERSION TORCH_CUDA TORCH_GPU < <("$PY" -c \
    'import torch; print(torch.__version__, torch.version.cuda, int(torch.cuda.is_available()))' \
    2>/dev/null)
[ "${TORCH_GPU:-0}" = "1" ] ||
    nothing_to_do "torch (${TORCH_VERSION:-not importable with $PY}) sees no CUDA GPU"

# --- the CUDA tests: NAME CAP_S TITLE PYTEST-ARGS... (the demo-config runs stop by a deadline a
# little before their part's limit, so that each config still gets its result)
cuda_tests() {
    local name="$1" cap="$2" title="$3"
    shift 3
    local left
    left=$(remaining)
    [ "$cap" -gt "$left" ] && cap=$left
    export MMDYNAMIC_CUDA_DEADLINE=$(($(date +%s) + cap - 30))
    run_part "$name" "$cap" "$PY" -m pytest -q -m cuda -p no:cacheprovider -rfE "$@"
    local summary status failures section
    summary="$(grep -E '(passed|failed|error|skipped)( |,|$)' "$PART_LOG" | tail -1)"
    case "$PART_RC" in
        0) status="passed" ;;
        124 | 137) status="not finished: over its ${PART_CAP} s limit"; FAILED=1 ;;
        5) status="no test collected"; FAILED=1 ;;
        125) status="$(cat "$PART_LOG")"; FAILED=1 ;;
        *) status="failed (exit $PART_RC)"; FAILED=1 ;;
    esac
    if [ "$PART_RC" -eq 0 ] && ! grep -q ' passed' <<<"$summary"; then
        status="no test ran on the GPU (all skipped)"
        FAILED=1
    fi
    section="## $title

- status: $status, ${PART_S} s; ${summary:-no pytest summary}
- log: $PART_LOG"
    failures="$(grep -E '^(FAILED|ERROR) ' "$PART_LOG")"
    [ -n "$failures" ] && section="$section

\`\`\`
$failures
\`\`\`"
    SECTIONS+=("$section")
}
cuda_tests cuda_tests 120 \
    "CUDA tests: SAR sparse == dense, step-major executor, device checks, timer, benchmark tools" \
    tests/test_cuda --ignore=tests/test_cuda/test_demo_configs.py
cuda_tests cuda_demo_configs 200 "CUDA tests: every demo config (fp32, --amp, resume, budgets, early exit)" \
    tests/test_cuda/test_demo_configs.py

# --- the benchmarks' GPU presets (benchmark.py's PRESETS['gpu'] / STREAM_PRESETS['gpu']): NAME CAP_S
# ARGS... (benchmark.py --preset gpu --device cuda ARGS; each part writes its report to --out)
bench() {
    local name="$1" cap="$2"
    shift 2
    local out="$DIR/$name.md"
    rm -f "$out"
    run_part "bench_$name" "$cap" "$PY" tools/analysis_tools/benchmark.py --preset gpu --device cuda \
        "$@" --out "$out"
    local head="### $name: \`benchmark.py --preset gpu --device cuda $*\`"
    local body
    if [ "$PART_RC" -eq 0 ] && [ -f "$out" ]; then
        body="$(cat "$out")

(${PART_S} s)"
    elif [ "$PART_RC" -eq 125 ]; then
        body="not run: no time left in the ${BUDGET_S} s budget"
    elif [ "$PART_RC" -eq 124 ] || [ "$PART_RC" -eq 137 ]; then
        body="not run: over its ${PART_CAP} s limit (log $PART_LOG)"
    elif grep -q "unrecognized arguments" "$PART_LOG"; then
        body="not run: the tool does not take these options yet ($(grep -o 'unrecognized arguments:.*' "$PART_LOG" | head -1))"
    else
        body="failed (exit $PART_RC, log $PART_LOG):

\`\`\`
$(tail -15 "$PART_LOG")
\`\`\`"
        FAILED=1
    fi
    SECTIONS+=("$head

$body")
}

SECTIONS+=("## Speed benchmarks, GPU presets (the papers' batch sizes; 224 px)")
bench sar 40 --families sar
bench gfnet 50 --families gfnet
bench mgnet 45 --families mgnet
bench uniadafocus 50 --families uniadafocus
bench throughput 80 --families gfnet mgnet uniadafocus --throughput --step-times

# --- the report
TOTAL=$(($(date +%s) - START))
{
    echo "# mmdynamic GPU check"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "- GPU(s) (name, memory, driver): $GPUS"
    echo "- torch $TORCH_VERSION (CUDA $TORCH_CUDA); $(getconf _NPROCESSORS_ONLN) CPU cores, load average $(cut -d" " -f1-3 /proc/loadavg 2>/dev/null); ${TOTAL} s in all (budget ${BUDGET_S} s)"
    echo "- result: $([ "$FAILED" -eq 0 ] && echo 'every part that ran passed' || echo 'FAILURES (see below)')"
    for section in "${SECTIONS[@]}"; do
        echo
        echo "$section"
    done
} >"$REPORT"
cat "$REPORT"
echo "[gpu_check] report: $REPORT"
exit "$FAILED"
