#!/usr/bin/env bash
# The paper's remaining benchmarks through lmms-eval (pip install -e '.[lmms-eval]'), for a merged checkpoint.
# Usage: bash locus_eval/run_lmms_eval.sh CKPT qwen2_5_vl_7b|qwen3_vl_4b|mimo_vl_7b OUT_DIR [extra locus-eval flags]
# A thin wrapper: the per-backbone settings (thinking, 8,192-token greedy budget) live in locus_eval/lmms.py, and
# the exact lmms-eval commands are saved as OUT_DIR/command.json and OUT_DIR/command.sh.
set -euo pipefail
CKPT=${1:?checkpoint directory}
BACKBONE=${2:?qwen2_5_vl_7b, qwen3_vl_4b or mimo_vl_7b}
OUT=${3:?output directory}
shift 3
exec locus-eval lmms-eval --model "$CKPT" --backbone "$BACKBONE" --out "$OUT" "$@"
