"""``locus-eval plot-training`` on a small log in EasyR1's file-logger shape."""

import json

import pytest

from locus_eval.cli import main
from locus_eval.plots import read_experiment_log


def write_log(path):
    lines = []
    for step in range(1, 21):
        # FileLogger: {"step": s, **unflatten_dict(metrics)}, so "reward/iou" is nested as {"reward": {"iou": ...}}
        lines.append({"step": step, "reward": {"overall": 0.1 + 0.04 * step, "iou": 0.03 * step,
                      "acc50": 0.02 * step, "format": min(1.0, 0.5 + 0.05 * step)},
                      "response_length": {"mean": 300.0}})  # fmt: skip
        if step % 5 == 0:  # validation rows are logged separately with val/<key>_reward
            lines.append({"step": step, "val": {"reward_score": 0.5, "overall_reward": 0.05 * step,
                          "iou_reward": 0.025 * step, "format_reward": 0.9}})  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n{"step": 21, "rew')  # torn by a kill
    return path


def test_plot_training_writes_a_png(tmp_path):
    log = write_log(tmp_path / "experiment_log.jsonl")
    records = read_experiment_log(log)
    assert records[0]["reward/iou"] == pytest.approx(0.03) and len(records) == 24
    main(["plot-training", str(tmp_path)])
    png = tmp_path / "training_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_training_without_a_log_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["plot-training", str(tmp_path)])
    assert "no experiment_log.jsonl" in capsys.readouterr().err


def write_lfpc_log(path):
    # an LFPC run's log as EasyR1's FileLogger writes it: the LFPC reward's keys and the crop-tool rollout's
    # rollout_* figures under reward/ (training) and val/<key>_reward (validation)
    lines = []
    for step in range(1, 11):
        reward = {"overall": 1.0 + 0.1 * step, "accuracy": 0.4 + 0.03 * step, "format": 0.9, "tool": 0.3,
                  "tool_calls": 1.0 + 0.1 * step, "turns": 2.0 + 0.1 * step, "iou": 0.02 * step,
                  "overlap": 0.05 * step, "bbox_ratio": 0.3 - 0.02 * step, "rollout_max_turns": 0.1,
                  "rollout_crop_tokens": 800.0 - 30 * step, "rollout_turns": 2.0 + 0.1 * step}  # fmt: skip
        lines.append({"step": step, "reward": reward, "response_length": {"mean": 900.0}})
        if step % 5 == 0:
            val = {"overall_reward": 1.2, "accuracy_reward": 0.5, "tool_calls_reward": 1.4}
            lines.append({"step": step, "val": val})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_plot_training_draws_lfpc_dynamics_beside_the_reward(tmp_path):
    # Figs. 5-6: the dynamics appear as panels when the log holds them, validation points included; a LOCUS log
    # keeps its four panels only
    from locus_eval.plots import training_panels

    log = write_lfpc_log(tmp_path / "experiment_log.jsonl")
    titles = [title for title, _, _ in training_panels(read_experiment_log(log))]
    assert titles == [
        "Reward (overall)",
        "IoU",
        "Format",
        "Accuracy",
        "Tool calls / trajectory",
        "Turns",
        "Hit max turns",
        "Crop overlap",
        "BBox ratio",
        "Crop visual tokens",
    ]
    locus = write_log(tmp_path / "locus.jsonl")
    assert [title for title, _, _ in training_panels(read_experiment_log(locus))] == [
        "Reward (overall)",
        "IoU",
        "ACC@0.5",
        "Format",
    ]
    main(["plot-training", str(tmp_path), "--out", str(tmp_path / "lfpc.png")])
    from PIL import Image

    with Image.open(tmp_path / "lfpc.png") as image:  # 10 panels: a 4-column grid of 3 rows
        assert image.size == (int(4 * 4.2 * 150), int(3 * 3.4 * 150))
