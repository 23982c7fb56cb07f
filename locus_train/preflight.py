"""Preflight for the LOCUS launchers: every check that can fail a cluster run, before the cluster is used.

    python3 -m locus_train.preflight --recipe config/locus_qwen2_5_vl_7b.yaml [--dry-run] [key=value ...]

The launchers in examples/ call this with their environment variables. Each check is a small function returning a
:class:`Check` whose message names the fix. When all pass, the EasyR1 command is printed and (without ``--dry-run``)
executed in place of this process. ``--dry-run`` runs every check that needs no GPU, changes nothing on disk (a
missing dataset or prompt-length report is reported with the command that would make it) and prints the command.

Paths reach EasyR1 as absolute overrides on the command line: EasyR1 silently replaces a missing ``format_prompt``
or ``reward_function`` path with None, so each one is checked to exist here first.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from locus_data.config import SPLITS, load_config, split_path
from locus_data.errors import UserError
from locus_data.rows import count_rows, read_batches
from locus_reward.frames import to_model
from locus_reward.ground_truth import dumps, loads
from locus_reward.parsing import format_answer
from locus_train.easyr1_config import (
    PINNED_COMMIT,
    RecipeError,
    compose,
    load_schema,
    locus_errors,
    resolve,
    schema_errors,
    startup_errors,
    with_overrides,
)
from locus_train.processor import ModelNotFound, resolve_model
from locus_train.prompt_report import PromptLengthReport, sha256
from locus_train.recipe import frame_options, recipe_root


EASYR1_INSTALL = f'pip install "omegaconf>=2.3,<2.4" "git+https://github.com/hiyouga/EasyR1.git@{PINNED_COMMIT}"'
# sha256 of `git archive` snapshots of EasyR1 -> their commit. An archive has no .git; for an archive install pip
# records only its hash (direct_url.json archive_info). ../shared/vendor/easyr1-b44b311.tar.gz, which CI installs:
EASYR1_ARCHIVES = {"424dee2aa3ed46243d1bdb4c78be05083675ce6f3c0f4458b24ad829d9a628f6": PINNED_COMMIT}
DEFAULT_DATA_CONFIG = "config/data/locus_default.yaml"
TASKS = {"cue_search": 2, "text_cue": 1}  # images per prompt


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped (dry run, or not applicable)
    message: str

    def line(self) -> str:
        tag = {True: " ok ", False: "FAIL", None: "skip"}[self.ok]
        return f"[{tag}] {self.name}: {self.message}"


@dataclass
class Plan:
    """Everything the checks need, resolved once from the arguments."""

    root: Path
    """the project root the recipe's relative paths start from (:func:`locus_train.recipe.recipe_root`)"""
    recipe: Path
    ablations: list[Path]
    raw: Any
    """the recipe with its ablation overlays, unresolved: composed once, here (the launch adds only overrides)"""
    overrides: list[str]
    task: str
    model_path: str
    data_dir: Path
    data_config: Path
    coco_root: Path | None
    nnodes: int
    n_gpus_per_node: int
    dry_run: bool


# ----------------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------------


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
    errors = startup_errors(cfg) + locus_errors(raw, cfg, TASKS[plan.task])
    if errors:
        return Check("config", False, "; ".join(errors)), None
    world = cfg["trainer"]["nnodes"] * cfg["trainer"]["n_gpus_per_node"]
    return Check("config", True, f"valid against EasyR1 {PINNED_COMMIT[:7]}, batch rules hold for {world} GPUs"), cfg


def check_real_easyr1_config(raw: Any) -> Check:
    """Resolve with the installed EasyR1's own PPOConfig, as ``verl.trainer.main`` does, when it is importable."""
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
        if value is None
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
        if not os.path.isabs(path):
            problems.append(f"{key}={path} is relative (multi-node workers resolve it elsewhere)")
        elif not os.path.isfile(path) and not key.endswith("_files"):
            problems.append(f"{key}={path} does not exist")
    if problems:
        return Check("files", False, "; ".join(problems))
    return Check("files", True, "format prompt, reward file and data paths are absolute; referenced files exist")


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
    return Check("paths", True, f"data config {plan.data_config.name} loads; DATA_DIR {plan.data_dir}")


def build_command(plan: Plan) -> list[str]:
    if plan.task == "text_cue":
        return [
            "locus-data",
            "export-text-cue",
            "--data",
            "<cue-search dataset>",
            "--annotations",
            "<refexps.jsonl>",
            "--out",
            str(plan.data_dir),
        ]
    command = ["locus-data", "build", "--config", str(plan.data_config), "--out", str(plan.data_dir)]
    if plan.coco_root is not None:
        command[4:4] = ["--coco-root", str(plan.coco_root)]
    return command


def check_dataset(plan: Plan, validate: Callable[[Path, int], subprocess.CompletedProcess]) -> Check:
    """train/val.parquet present (built from COCO_ROOT when missing) and valid per `locus-data validate`."""
    files = [split_path(plan.data_dir, split) for split in SPLITS]
    if not all(path.is_file() for path in files):
        command = shlex.join(build_command(plan))
        if plan.task == "text_cue":
            return Check("dataset", False, f"{plan.data_dir} has no train/val.parquet; build it with: {command}")
        if plan.coco_root is None or not plan.coco_root.is_dir():
            return Check(
                "dataset",
                False,
                f"{plan.data_dir} is not built and COCO_ROOT={plan.coco_root} is not a "
                f"directory; set COCO_ROOT (folder with annotations/ and train2014/) or build it: {command}",
            )
        if plan.dry_run:
            return Check("dataset", None, f"{plan.data_dir} not built yet; would run: {command}")
        print(f"building the dataset: {command}", flush=True)
        if subprocess.run(locus_data_cli(build_command(plan)[1:])).returncode != 0:
            return Check("dataset", False, f"`{command}` failed (see above)")
    result = validate(plan.data_dir, TASKS[plan.task])
    if result.returncode != 0:
        tail = (result.stdout or "").strip().splitlines()[-5:] + (result.stderr or "").strip().splitlines()[-5:]
        return Check(
            "dataset",
            False,
            f"`locus-data validate {plan.data_dir}` failed: {' | '.join(tail)}; "
            f"rebuild with: {shlex.join(build_command(plan))}",
        )
    return Check("dataset", True, f"{plan.data_dir} valid")


def locus_data_cli(args: list[str]) -> list[str]:
    """``locus-data ARGS`` run by this interpreter, which has LOCUS installed even when its bin/ is not on PATH."""
    return [sys.executable, "-m", "locus_data.cli", *args]


def run_validate(data_dir: Path, num_images: int) -> subprocess.CompletedProcess:
    command = locus_data_cli(["validate", str(data_dir), "--images", str(num_images), "--quiet"])
    return subprocess.run(command, capture_output=True, text=True)


def check_batch_fits(cfg: dict[str, Any]) -> Check:
    """At least one full rollout batch in train (EasyR1's loader drops the last partial batch)."""
    path = Path(cfg["data"]["train_files"])
    if not path.is_file():
        return Check("train size", None, f"{path} not built yet")
    rows = count_rows(path)
    batch = cfg["data"]["rollout_batch_size"]
    if rows < batch:
        return Check("train size", False, f"{rows} train rows < data.rollout_batch_size {batch}: zero steps")
    return Check("train size", True, f"{rows} rows = {rows // batch} steps per epoch of {batch} prompts")


def prompt_report_path(plan: Plan) -> Path:
    return plan.data_dir / f"prompt_lengths_{plan.recipe.stem}.json"


def measure_command(cfg: dict[str, Any], plan: Plan) -> list[str]:
    data = cfg["data"]
    return [
        sys.executable, "-m", "locus_train.prompt_lengths", str(plan.data_dir), "--model", plan.model_path,
        "--format-prompt", data["format_prompt"], "--min-pixels", str(data["min_pixels"]),
        "--max-pixels", str(data["max_pixels"]), "--max-prompt-length", str(data["max_prompt_length"]),
        "--report", str(prompt_report_path(plan)), "--quiet",
    ]  # fmt: skip


def check_prompt_lengths(cfg: dict[str, Any], plan: Plan) -> Check:
    """With filter_overlong_prompts off, an offline measurement must show every prompt within the budget."""
    data = cfg["data"]
    if data["filter_overlong_prompts"]:
        return Check("prompt lengths", None, "EasyR1 filters overlong prompts at startup (slow on large sets)")
    report_path = prompt_report_path(plan)
    command = measure_command(cfg, plan)
    if not report_path.is_file():
        if plan.dry_run or not split_path(plan.data_dir, SPLITS[0]).is_file():
            return Check("prompt lengths", None, f"not measured yet; would run: {shlex.join(command)}")
        print(f"measuring prompt lengths: {shlex.join(command)}", flush=True)
        # the model check found the processor locally: the measurement must not wait on hub retries either
        subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if not report_path.is_file():
            return Check("prompt lengths", False, f"`{shlex.join(command)}` wrote no report")
    try:
        report = PromptLengthReport.read(report_path)
    except UserError as err:
        return Check("prompt lengths", False, str(err))
    format_prompt = Path(data["format_prompt"]).read_text(encoding="utf-8")
    stale = report.stale(
        min_pixels=data["min_pixels"],
        max_pixels=data["max_pixels"],
        model=plan.model_path,
        format_prompt_sha256=sha256(format_prompt),
        limit=None,
    )
    # a split rebuilt in place keeps its path: its row count tells the old report apart
    for split, path in zip(SPLITS, (data["train_files"], data["val_files"])):
        measured = report.splits.get(split)
        if measured is not None and Path(path).is_file() and measured.rows != count_rows(Path(path)):
            stale.append(f"{split} rows")
    if stale:
        return Check(
            "prompt lengths",
            False,
            f"{report_path} was measured with other {stale}; delete it and re-run, or measure: {shlex.join(command)}",
        )
    longest = report.longest
    if longest > data["max_prompt_length"]:
        return Check(
            "prompt lengths",
            False,
            f"longest prompt has {longest} tokens > data.max_prompt_length "
            f"{data['max_prompt_length']}: raise it, or drop those rows with --write-filtered "
            f"(`{shlex.join(command)} --write-filtered DIR`) and train on DIR",
        )
    return Check("prompt lengths", True, f"longest prompt {longest} <= {data['max_prompt_length']} tokens")


def sample_ground_truth(cfg: dict[str, Any]) -> str:
    """The first validation answer, or a synthetic one before the data exists."""
    path = Path(cfg["data"]["val_files"])
    if path.is_file():
        answer_key = cfg["data"]["answer_key"]
        return next(read_batches(path, [answer_key], limit=1)).column(answer_key)[0].as_py()
    return dumps((100.0, 80.0, 132.0, 120.0), 640, 480)


def check_reward(cfg: dict[str, Any]) -> Check:
    """Load the reward file the way EasyR1 does and score a perfect and an empty answer with the recipe's kwargs."""
    path, name = cfg["worker"]["reward"]["reward_function"].rsplit(":", 1)
    kwargs = cfg["worker"]["reward"]["reward_function_kwargs"]
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
    gt_text = sample_ground_truth(cfg)
    gt = loads(gt_text)
    try:
        frame = frame_options(kwargs)
    except (TypeError, ValueError) as err:
        return Check("reward", False, f"worker.reward.reward_function_kwargs: {err}")
    box = to_model(gt.box, gt.width, gt.height, frame.coord_frame, **frame.pixel_kwargs)
    think = "The cue is here." if frame.think_prefilled else "<think>The cue is here."
    perfect = f"{think}</think><answer>{format_answer(box, decimals=2)}</answer>"
    inputs = [
        {"response": perfect, "response_length": len(perfect), "ground_truth": gt_text},
        {"response": "no answer", "response_length": 9, "ground_truth": gt_text},
    ]
    try:
        scores = function(inputs, **kwargs)
    except Exception as err:
        return Check("reward", False, f"{path}:{name} raised {type(err).__name__}: {err} (EasyR1 would crash)")
    if not isinstance(scores, list) or len(scores) != 2 or not all("overall" in s for s in scores):
        return Check("reward", False, f"{path}:{name} must return one dict with `overall` per input, got {scores!r}")
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


# ----------------------------------------------------------------------------------------------------------------
# plan, command, main
# ----------------------------------------------------------------------------------------------------------------


def absolute(path: str | Path, root: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def path_overrides(raw: Any, plan: Plan) -> list[str]:
    """Absolute paths for everything EasyR1 opens, plus the launcher's model and GPU layout."""
    reward_path, reward_name = str(raw.worker.reward.reward_function).rsplit(":", 1)
    overrides = [
        f"data.train_files={split_path(plan.data_dir, SPLITS[0])}",
        f"data.val_files={split_path(plan.data_dir, SPLITS[1])}",
        f"data.format_prompt={absolute(raw.data.format_prompt, plan.root)}",
        f"worker.reward.reward_function={absolute(reward_path, plan.root)}:{reward_name}",
        f"worker.actor.model.model_path={plan.model_path}",
        f"trainer.nnodes={plan.nnodes}",
        f"trainer.n_gpus_per_node={plan.n_gpus_per_node}",
    ]
    if plan.ablations:
        stems = "_".join(path.stem for path in plan.ablations)
        overrides.append(f"trainer.experiment_name={raw.trainer.experiment_name}_{stems}")
    return overrides


def make_plan(args: argparse.Namespace) -> Plan:
    recipe = Path(args.recipe).expanduser().resolve()
    root = recipe_root(recipe)
    ablations = [absolute(p, root) for p in (args.ablation or "").replace(",", " ").split()]
    raw, locus = compose(recipe, ablations)
    recipe_data_dir = absolute(Path(str(raw.data.train_files)).parent, root)
    return Plan(
        root=root,
        recipe=recipe,
        ablations=ablations,
        raw=raw,
        overrides=args.overrides,
        task=args.task,
        model_path=args.model_path or str(raw.worker.actor.model.model_path),
        data_dir=absolute(args.data_dir or locus.get("data_dir") or recipe_data_dir, root),
        data_config=absolute(args.data_config or locus.get("data_config") or DEFAULT_DATA_CONFIG, root),
        coco_root=absolute(args.coco_root, root) if args.coco_root else None,
        nnodes=args.nnodes,
        n_gpus_per_node=args.n_gpus_per_node,
        dry_run=args.dry_run,
    )


def config_file(plan: Plan) -> Path:
    """The YAML EasyR1 loads: the recipe itself, or recipe + ablation overlays written under runs/."""
    if not plan.ablations:
        return plan.recipe
    name = "_".join([plan.recipe.stem, *(path.stem for path in plan.ablations)])
    return plan.root / "runs" / name / "easyr1_config.yaml"


def write_config_file(plan: Plan) -> None:
    """Write the composed recipe + overlays (only when launching; interpolations stay for EasyR1 to resolve)."""
    if not plan.ablations:
        return
    out = config_file(plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(plan.raw, out)


EXPENSIVE = ("dataset", "train size", "prompt lengths")
"""checks that may build or measure (minutes): they run only once every cheap check has passed"""


def preflight(
    plan: Plan,
    validate: Callable[[Path, int], subprocess.CompletedProcess] = run_validate,
    report: Callable[[Check], None] | None = None,
) -> tuple[list[Check], list[str]]:
    """Run the checks, cheap ones first; returns them and the EasyR1 command (meaningful when none failed).

    Every check that takes seconds runs and is reported (through ``report`` as it finishes) before anything is
    built or measured; if one failed, the building and measuring checks are skipped (a dry run builds and
    measures nothing, so there they still report what they would do).
    """
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if report is not None:
            report(check)

    add(check_omegaconf())
    add(check_easyr1())
    try:
        schema = load_schema()
        overrides = path_overrides(plan.raw, plan) + plan.overrides
        raw = with_overrides(plan.raw, overrides)
    except RecipeError as err:
        add(Check("config", False, str(err)))
        return checks, []
    check, cfg = check_config(raw, plan, schema)
    add(check)
    command = [sys.executable, "-m", "verl.trainer.main", f"config={config_file(plan)}", *overrides]
    if cfg is None:
        return checks, command
    add(check_real_easyr1_config(raw))
    add(check_files(cfg, plan))
    add(check_model(plan))
    add(check_paths(plan))
    add(check_reward(cfg))
    add(check_gpus(plan))
    failed = [check.name for check in checks if check.ok is False]
    if failed and not plan.dry_run:
        for name in EXPENSIVE:
            add(Check(name, None, f"not run: fix {', '.join(failed)} first (nothing was built or measured)"))
        return checks, command
    add(check_dataset(plan, validate))
    add(check_batch_fits(cfg))
    add(check_prompt_lengths(cfg, plan))
    return checks, command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", required=True, help="training YAML under config/")
    parser.add_argument(
        "--task", choices=sorted(TASKS), default="cue_search", help="cue_search (2 images) or text_cue"
    )
    parser.add_argument("--model-path", default=env("MODEL_PATH"), help="checkpoint dir or hub id [$MODEL_PATH]")
    parser.add_argument("--coco-root", default=env("COCO_ROOT"), help="COCO root for building the data [$COCO_ROOT]")
    parser.add_argument("--data-dir", default=env("DATA_DIR"), help="dataset folder [$DATA_DIR]")
    parser.add_argument("--data-config", default=env("LOCUS_DATA_CONFIG"), help="data config [$LOCUS_DATA_CONFIG]")
    parser.add_argument(
        "--ablation", default=env("LOCUS_ABLATION"), help="overlay YAML(s), comma-separated [$LOCUS_ABLATION]"
    )
    # string defaults: argparse applies type=int to them, so NNODES=two is a usage error, not a traceback
    parser.add_argument("--nnodes", type=int, default=env("NNODES", "1"), help="nodes [$NNODES]")
    parser.add_argument("--n-gpus-per-node", type=int, default=env("N_GPUS_PER_NODE", "8"), help="[$N_GPUS_PER_NODE]")
    parser.add_argument("--dry-run", action="store_true", help="no GPU checks, no building, no launch")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="EasyR1 overrides, passed through")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        plan = make_plan(args)
    except RecipeError as err:
        print(f"preflight: {err}", file=sys.stderr)
        return 1
    checks, command = preflight(plan, report=lambda check: print(check.line(), flush=True))
    failed = [check for check in checks if check.ok is False]
    if plan.dry_run and command:
        print("command (dry run, not launched): " + shlex.join(command), flush=True)
    if failed:
        print(f"preflight: {len(failed)} check(s) failed; nothing was launched", file=sys.stderr)
        return 1
    if plan.dry_run:
        return 0
    print("command: " + shlex.join(command), flush=True)
    write_config_file(plan)
    os.chdir(plan.root)  # EasyR1 resolves what is left relative (checkpoints/, the config's own paths) from here
    os.execv(command[0], command)  # replaces this process: signals and the exit status belong to EasyR1


if __name__ == "__main__":
    sys.exit(main())
