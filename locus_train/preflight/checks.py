"""The quick checks of a preflight, each a function returning a :class:`Check` whose message names the fix.

What is installed (omegaconf, EasyR1 from the pinned commit), the composed config (against the pinned schema and the
installed EasyR1), the files and model it names, the reward loaded as EasyR1 loads it, and the GPUs. The checks that
build or measure data are in :mod:`locus_train.preflight.data_checks`.
"""

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from locus_agent.processor import (
    ALLOW_FRAME_MISMATCH,
    ModelNotFound,
    check_checkpoint_frame,
    checkpoint_model_type,
    resolve_model,
)
from locus_data.config import load_config
from locus_data.errors import UserError
from locus_data.rows import read_batches
from locus_reward.frames import to_model
from locus_reward.ground_truth import dumps, loads
from locus_reward.options import LfpcOptions
from locus_reward.parsing import format_answer
from locus_train.easyr1.config import LFPC_SECTION, LfpcConfig, lfpc_errors, read_lfpc
from locus_train.easyr1_config import (
    PINNED_COMMIT,
    locus_errors,
    resolve,
    reward_errors,
    schema_errors,
    startup_errors,
)
from locus_train.preflight.plan import TASKS, Plan
from locus_train.recipe import frame_options


EASYR1_INSTALL = f'pip install "omegaconf>=2.3,<2.4" "git+https://github.com/hiyouga/EasyR1.git@{PINNED_COMMIT}"'
# sha256 of `git archive` snapshots of EasyR1 -> their commit. An archive has no .git; for an archive install pip
# records only its hash (direct_url.json archive_info). ../shared/vendor/easyr1-b44b311.tar.gz, which CI installs:
EASYR1_ARCHIVES = {"424dee2aa3ed46243d1bdb4c78be05083675ce6f3c0f4458b24ad829d9a628f6": PINNED_COMMIT}


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped (dry run, or not applicable)
    message: str

    def line(self) -> str:
        tag = {True: " ok ", False: "FAIL", None: "skip"}[self.ok]
        return f"[{tag}] {self.name}: {self.message}"


def check_omegaconf() -> Check:
    version = importlib.metadata.version("omegaconf")
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    if major_minor >= (2, 4):
        return Check(
            "omegaconf",
            False,
            f"omegaconf {version}: EasyR1 {PINNED_COMMIT[:7]} cannot build its own config under 2.4 (TupleConfig "
            'length error on trainer.logger); fix: pip install "omegaconf>=2.3,<2.4"',
        )
    return Check("omegaconf", True, version)


def easyr1_commit(distribution: Any) -> str | None:
    """The commit an installed EasyR1 came from: pip's direct_url.json (a git URL, or a known archive's sha256), or
    the git checkout of an editable install."""
    text = distribution.read_text("direct_url.json")
    if not text:
        return None
    direct_url = json.loads(text)
    commit = direct_url.get("vcs_info", {}).get("commit_id")
    if commit:
        return commit
    archive = direct_url.get("archive_info", {})
    digest = archive.get("hashes", {}).get("sha256") or archive.get("hash", "").removeprefix("sha256=")
    if digest in EASYR1_ARCHIVES:
        return EASYR1_ARCHIVES[digest]
    url = direct_url.get("url", "")
    if url.startswith("file://"):
        source = url[len("file://") :]
        result = subprocess.run(["git", "-C", source, "rev-parse", "HEAD"], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None
    return None


def check_easyr1(find: Callable[[str], Any] = importlib.metadata.distribution) -> Check:
    """EasyR1 (package `verl`) installed, and from the pinned commit."""
    try:
        distribution = find("verl")
    except importlib.metadata.PackageNotFoundError:
        return Check("EasyR1", False, f"EasyR1 (package `verl`) is not installed; fix: {EASYR1_INSTALL}")
    commit = easyr1_commit(distribution)
    if commit is None:
        return Check(
            "EasyR1",
            False,
            f"cannot tell which commit `verl` {distribution.version} was installed from (a registry `verl` is "
            f"volcengine/verl, not EasyR1); fix: {EASYR1_INSTALL} (or pip install -e a checkout of that commit)",
        )
    if commit != PINNED_COMMIT:
        return Check(
            "EasyR1",
            False,
            f"installed from {commit[:12]}, recipes are pinned to {PINNED_COMMIT[:12]}; fix: {EASYR1_INSTALL}",
        )
    return Check("EasyR1", True, f"verl {distribution.version} at {PINNED_COMMIT[:12]}")


def check_config(raw: Any, plan: Plan, schema: dict[str, Any]) -> tuple[Check, dict[str, Any] | None]:
    """Keys, types and choices against the pinned schema; EasyR1's startup rules; the LOCUS rules."""
    errors = schema_errors(raw, schema)
    if errors:
        return Check("config", False, "; ".join(errors)), None
    cfg = resolve(raw, schema)
    rules = lfpc_rule_errors(raw, cfg, plan) if plan.task == "lfpc" else locus_errors(raw, cfg, TASKS[plan.task])
    errors = range_errors(cfg) + startup_errors(cfg) + rules
    if errors:
        return Check("config", False, "; ".join(errors)), None
    world = cfg["trainer"]["nnodes"] * cfg["trainer"]["n_gpus_per_node"]
    return Check("config", True, f"valid against EasyR1 {PINNED_COMMIT[:7]}, batch rules hold for {world} GPUs"), cfg


def lfpc_settings(plan: Plan) -> LfpcConfig:
    """The run's ``lfpc:`` section: the recipe's and overlays', then ``lfpc.<key>=value`` overrides (UserError)."""
    overrides = OmegaConf.to_container(OmegaConf.from_dotlist(plan.lfpc_overrides)).get(LFPC_SECTION)
    return read_lfpc([plan.lfpc, overrides])


def lfpc_rule_errors(raw: Any, cfg: dict[str, Any], plan: Plan) -> list[str]:
    """What an LFPC run needs beyond a valid EasyR1 config: the ``lfpc:`` section and :func:`lfpc_errors`, the
    reward's kwargs as :class:`LfpcOptions` reads them, the rules every recipe keeps (:func:`reward_errors`)."""
    try:
        settings = lfpc_settings(plan)
    except UserError as err:
        return [str(err)]
    errors = lfpc_errors(settings, cfg, plan.root) + reward_errors(raw, cfg)
    try:
        LfpcOptions.from_kwargs(cfg["worker"]["reward"]["reward_function_kwargs"])
    except (TypeError, ValueError) as err:
        errors.append(f"worker.reward.reward_function_kwargs: {err}")
    return errors


def _findable(name: str) -> bool:
    """Whether a top-level module can be imported, without importing it (a finder may raise instead of answering)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_real_easyr1_config(raw: Any) -> Check:
    """Resolve with the installed EasyR1's own PPOConfig, as ``verl.trainer.main`` does, when it is importable."""
    # (a module already imported counts: CPU tests install import stand-ins for vLLM, which have no spec)
    missing = [name for name in ("verl", "vllm") if name not in sys.modules and not _findable(name)]
    if missing:  # EasyR1's config module imports vLLM: without it the import fails anyway, after seconds of torch
        return Check("EasyR1 PPOConfig", None, f"not importable here (No module named {missing[0]!r})")
    try:
        from verl.trainer.config import PPOConfig  # optional: only where EasyR1 is installed
    except Exception as err:  # EasyR1 missing or its vLLM import chain broken; check_easyr1 reports the first case
        return Check("EasyR1 PPOConfig", None, f"not importable here ({type(err).__name__}: {err})")
    try:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PPOConfig()), raw))
        config.deep_post_init()
    except Exception as err:
        return Check("EasyR1 PPOConfig", False, f"EasyR1 rejects the config: {err}")
    # deep_post_init silently turns missing paths into None: that is the failure this check exists for
    dropped = [
        name
        for name, value in (
            ("data.format_prompt", config.data.format_prompt),
            ("worker.reward.reward_function", config.worker.reward.reward_function),
        )
        if value is None and OmegaConf.select(raw, name) is not None  # LFPC recipes set no format prompt
    ]
    if dropped:
        return Check("EasyR1 PPOConfig", False, f"EasyR1 dropped missing path(s) {dropped}")
    return Check("EasyR1 PPOConfig", True, "resolved by the installed EasyR1")


def referenced_files(cfg: dict[str, Any]) -> dict[str, str]:
    reward = cfg["worker"]["reward"]["reward_function"].rsplit(":", 1)[0]
    return {
        "data.format_prompt": cfg["data"]["format_prompt"],
        "worker.reward.reward_function": reward,
        "data.train_files": cfg["data"]["train_files"],
        "data.val_files": cfg["data"]["val_files"],
    }


def check_files(cfg: dict[str, Any], plan: Plan) -> Check:
    """Every referenced file is an absolute path that exists (the data files may still be built below)."""
    problems = []
    for key, path in referenced_files(cfg).items():
        if path is None:  # an LFPC recipe's format prompt: its instructions are the system prompt
            continue
        if not os.path.isabs(path):
            problems.append(f"{key}={path} is relative (multi-node workers resolve it elsewhere)")
        elif not os.path.isfile(path) and not key.endswith("_files"):
            problems.append(f"{key}={path} does not exist")
    if problems:
        return Check("files", False, "; ".join(problems))
    what = "format prompt, reward file" if cfg["data"]["format_prompt"] else "reward file"
    return Check("files", True, f"{what} and data paths are absolute; referenced files exist")


def check_model(plan: Plan) -> Check:
    """MODEL_PATH is a local checkpoint folder, or a hub id already in the local Hugging Face cache (no network)."""
    try:
        path = resolve_model(plan.model_path)
    except ModelNotFound as err:
        return Check("model", False, f"MODEL_PATH: {err}")
    if not (path / "config.json").is_file():
        return Check("model", False, f"MODEL_PATH={plan.model_path}: {path} has no config.json (not a checkpoint)")
    where = "local checkpoint" if str(path) == str(Path(plan.model_path).expanduser()) else f"cached at {path}"
    return Check("model", True, f"{plan.model_path} ({where})")


def check_frame(cfg: dict[str, Any], plan: Plan) -> Check:
    """The reward's coord_frame against MODEL_PATH's family (config.json model_type, the processor's patch grid)."""
    try:
        frame = frame_options(cfg["worker"]["reward"]["reward_function_kwargs"]).coord_frame
        model_dir = resolve_model(plan.model_path)
    except (ModelNotFound, TypeError, ValueError):
        return Check("frame", None, "no checkpoint or reward frame to compare (see model / reward)")
    if plan.allow_frame_mismatch:
        return Check("frame", None, f"{ALLOW_FRAME_MISMATCH}: {frame} is not compared with the checkpoint")
    try:
        check_checkpoint_frame(
            model_dir,
            frame,
            "coord_frame",
            fix="use the launcher of the checkpoint's family (its frame is {frame}) or set MODEL_PATH to this "
            "recipe's backbone",
            where=f"MODEL_PATH={plan.model_path} with {plan.recipe.name}: ",
        )
    except UserError as err:
        return Check("frame", False, str(err))
    return Check(
        "frame", True, f"{frame} fits {model_dir.name} ({checkpoint_model_type(model_dir) or 'unknown type'})"
    )


COUNTS_AT_LEAST_ONE = (
    ("trainer", "total_epochs"),
    ("data", "max_prompt_length"),
    ("data", "max_response_length"),
    ("data", "rollout_batch_size"),
    ("worker", "actor", "global_batch_size"),
)
"""EasyR1 config counts below 1 that train nothing (and exit 0), or crash hours in"""


def range_errors(cfg: dict[str, Any]) -> list[str]:
    """Counts and rates that pass the schema's types but make the run do nothing (or nonsense)."""
    errors = []
    for path in COUNTS_AT_LEAST_ONE:
        value: Any = cfg
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 1:
            errors.append(f"`{'.'.join(path)}` must be >= 1, got {value}")
    max_steps = cfg["trainer"].get("max_steps")
    if max_steps is not None and max_steps < 1:
        errors.append(f"`trainer.max_steps` must be >= 1 or null (train total_epochs), got {max_steps}")
    lr = cfg["worker"]["actor"]["optim"].get("lr")
    if isinstance(lr, (int, float)) and lr <= 0:
        errors.append(f"`worker.actor.optim.lr` must be > 0, got {lr}")
    return errors


def check_paths(plan: Plan) -> Check:
    """The other paths the environment names: the data config loads, DATA_DIR and COCO_ROOT are folders if present."""
    problems = []
    if plan.task == "cue_search":
        try:
            load_config(plan.data_config)
        except UserError as err:
            problems.append(f"LOCUS_DATA_CONFIG={plan.data_config}: {err}")
    if plan.data_dir.exists() and not plan.data_dir.is_dir():
        problems.append(f"DATA_DIR={plan.data_dir} is a file, not a folder")
    if plan.coco_root is not None and plan.coco_root.exists() and not plan.coco_root.is_dir():
        problems.append(f"COCO_ROOT={plan.coco_root} is a file, not a folder")
    if problems:
        return Check("paths", False, "; ".join(problems))
    if plan.task != "cue_search":
        return Check("paths", True, f"DATA_DIR {plan.data_dir}")
    return Check("paths", True, f"data config {plan.data_config.name} loads; DATA_DIR {plan.data_dir}")


def sample_ground_truth(cfg: dict[str, Any]) -> str:
    """The first validation answer, or a synthetic one before the data exists."""
    path = Path(cfg["data"]["val_files"])
    if path.is_file():
        answer_key = cfg["data"]["answer_key"]
        try:
            answers = next(read_batches(path, [answer_key], limit=1)).column(answer_key)
        except (UserError, StopIteration):
            answers = []  # another schema or no rows: the dataset check names the file
        if len(answers):
            return answers[0].as_py()
    return dumps((100.0, 80.0, 132.0, 120.0), 640, 480)


def score_right_and_empty(cfg: dict[str, Any], right: str, gt_text: str) -> list[dict[str, float]] | Check:
    """Load the recipe's reward file the way EasyR1 does and score ``right`` and an empty answer against
    ``gt_text`` with the recipe's kwargs: the two score dicts, or the failing Check (the file does not load, the
    function raises -- EasyR1 would crash -- or it does not return one dict with ``overall`` per input)."""
    path, name = cfg["worker"]["reward"]["reward_function"].rsplit(":", 1)
    try:
        spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        function = getattr(module, name)
    except Exception as err:
        return Check(
            "reward",
            False,
            f"cannot load {path}:{name} ({type(err).__name__}: {err}); is the project "
            "installed (pip install -e .) on every node?",
        )
    inputs = [
        {"response": right, "response_length": len(right), "ground_truth": gt_text},
        {"response": "no answer", "response_length": 9, "ground_truth": gt_text},
    ]
    try:
        scores = function(inputs, **cfg["worker"]["reward"]["reward_function_kwargs"])
    except Exception as err:
        return Check("reward", False, f"{path}:{name} raised {type(err).__name__}: {err} (EasyR1 would crash)")
    if not isinstance(scores, list) or len(scores) != 2 or not all("overall" in s for s in scores):
        return Check("reward", False, f"{path}:{name} must return one dict with `overall` per input, got {scores!r}")
    return scores


def check_reward(cfg: dict[str, Any]) -> Check:
    """The cue-search reward scores a perfect box in the recipe's frame ~1 and an empty answer 0."""
    gt_text = sample_ground_truth(cfg)
    gt = loads(gt_text)
    try:
        frame = frame_options(cfg["worker"]["reward"]["reward_function_kwargs"])
    except (TypeError, ValueError) as err:
        return Check("reward", False, f"worker.reward.reward_function_kwargs: {err}")
    box = to_model(gt.box, gt.width, gt.height, frame.coord_frame, **frame.pixel_kwargs)
    think = "The cue is here." if frame.think_prefilled else "<think>The cue is here."
    scores = score_right_and_empty(cfg, f"{think}</think><answer>{format_answer(box, decimals=2)}</answer>", gt_text)
    if isinstance(scores, Check):
        return scores
    if scores[0].get("iou", 0.0) < 0.95 or scores[1]["overall"] != 0:
        return Check(
            "reward",
            False,
            f"a perfect box in the {frame.coord_frame} frame scored {scores[0]} "
            f"and no answer scored {scores[1]}: the frame or the kwargs are wrong",
        )
    return Check("reward", True, f"perfect box iou {scores[0]['iou']:.3f}, overall {scores[0]['overall']:.3f}")


def check_gpus(plan: Plan) -> Check:
    needed = plan.nnodes * plan.n_gpus_per_node
    if plan.dry_run:
        return Check("GPUs", None, f"dry run; the run needs {needed}")
    try:
        if plan.nnodes > 1:
            import ray  # GPU counting only: a dry run needs neither ray nor torch

            ray.init(address="auto", logging_level="ERROR")
            available = int(ray.cluster_resources().get("GPU", 0))
            ray.shutdown()
            where = "in the Ray cluster"
        else:
            import torch  # heavy: loaded only when a model runs

            available, where = torch.cuda.device_count(), "on this node"
    except Exception as err:
        return Check(
            "GPUs",
            False,
            f"cannot count GPUs ({type(err).__name__}: {err}); multi-node: start Ray first (docs/cluster.md)",
        )
    if available < needed:
        return Check(
            "GPUs",
            False,
            f"{available} GPUs {where}, the run needs NNODES x N_GPUS_PER_NODE = {needed}; "
            "lower N_GPUS_PER_NODE (batch rules are re-checked) or add nodes",
        )
    return Check("GPUs", True, f"{available} {where}")
