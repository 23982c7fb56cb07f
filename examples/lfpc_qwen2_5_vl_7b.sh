#!/usr/bin/env bash
# LFPC (arXiv 2603.27494) on Qwen2.5-VL-7B-Instruct: resolution selection -> Stage I -> merge -> Stage II, GRPO with
# the crop tool on EasyR1, one 8-GPU node (Table 12). Recipes: config/lfpc_stage{1,2}_qwen2_5_vl_7b.yaml.
#
#   bash examples/lfpc_qwen2_5_vl_7b.sh                 # checks, then selection, exports, Stage I, merge, Stage II
#   bash examples/lfpc_qwen2_5_vl_7b.sh --dry-run       # every check that needs no GPU; prints every command
#   bash examples/lfpc_qwen2_5_vl_7b.sh --stage 2       # Stage II only, from Stage I's merged checkpoint
#   bash examples/lfpc_qwen2_5_vl_7b.sh lfpc.max_turns=4 worker.rollout.n=8   # key=value: both stages
#
# Environment: MODEL_PATH (base model, default below), LFPC_DATA (Stage I VQA manifest, before selection),
# LFPC_BOXED_DATA (Stage II manifest with nested boxes), LFPC_OUT (selection, exports and checkpoints; runs/lfpc),
# LFPC_ABLATION (config/ablations/lfpc_*.yaml, comma-separated), NNODES, N_GPUS_PER_NODE; see examples/launch.sh
# and locus_train/preflight/lfpc.py for the rest.
set -euo pipefail

export MODEL_PATH="${MODEL_PATH:-Qwen/Qwen2.5-VL-7B-Instruct}"
exec bash "$(dirname "${BASH_SOURCE[0]}")/launch.sh" config/lfpc_stage1_qwen2_5_vl_7b.yaml lfpc "$@"
