#!/usr/bin/env bash
# The body every examples/*.sh launcher shares: environment defaults, then preflight, which checks
# everything, prints the EasyR1 command and execs it (python3 -m verl.trainer.main ...). TASK lfpc runs the LFPC
# pipeline instead (python3 -m locus_train.preflight.lfpc: selection, exports, Stage I, merge, Stage II, each behind
# the same preflight; RECIPE is the Stage I recipe).
#
#   examples/launch.sh RECIPE TASK [--dry-run] [key=value ...]     (called by the launchers, not by users)
#
# Environment (default):
#   MODEL_PATH         checkpoint dir or hub id (each launcher sets its backbone's)
#   COCO_ROOT          COCO 2014 root, used to build the data when DATA_DIR has none ($REPO/data/coco)
#   DATA_DIR           dataset folder with train/val.parquet (the recipe's data/..., or the ablation's)
#   LOCUS_DATA_CONFIG  data config used when building (config/data/locus_default.yaml, or the ablation's)
#   LOCUS_ABLATION     overlay YAML(s) from config/ablations/, comma-separated (none)
#   NNODES             nodes in the Ray cluster; >1: start Ray first, run on the head node (1)
#   N_GPUS_PER_NODE    GPUs per node (8)
# TASK lfpc also reads LFPC_DATA, LFPC_BOXED_DATA, LFPC_OUT, LFPC_ABLATION (examples/lfpc_qwen2_5_vl_7b.sh), and
# EASYR1_DIR (the EasyR1 checkout whose scripts/model_merger.py merges Stage I; the image's /workspace/EasyR1).
set -euo pipefail

RECIPE="${1:?recipe YAML}"
TASK="${2:?cue_search, text_cue or lfpc}"
shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MODEL_PATH="${MODEL_PATH:?the launcher sets MODEL_PATH}"
export COCO_ROOT="${COCO_ROOT:-$ROOT/data/coco}"
export DATA_DIR="${DATA_DIR:-}"
export LOCUS_DATA_CONFIG="${LOCUS_DATA_CONFIG:-}"
export LOCUS_ABLATION="${LOCUS_ABLATION:-}"
export NNODES="${NNODES:-1}"
export N_GPUS_PER_NODE="${N_GPUS_PER_NODE:-8}"
export PYTHONUNBUFFERED=1

# without the environment, python3 would end in a ModuleNotFoundError traceback; name the fix instead
MISSING="$(python3 -c 'import importlib.util as u; print(" ".join(n for n in ("omegaconf", "pyarrow", "locus_train") if u.find_spec(n) is None))')"
if [ -n "$MISSING" ]; then
  echo "launch.sh: $(command -v python3) cannot import ${MISSING}; activate the environment LOCUS is installed in" \
    "(source .venv/bin/activate after make demo/make test, or the EasyR1 image's), or install it: pip install -e $ROOT" >&2
  exit 1
fi
if [ "$TASK" = lfpc ]; then
  exec python3 -m locus_train.preflight.lfpc --recipe "$ROOT/$RECIPE" "$@"
fi
exec python3 -m locus_train.preflight --recipe "$ROOT/$RECIPE" --task "$TASK" "$@"
