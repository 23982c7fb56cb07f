"""Speed of the rewards: a typical 1,024-response batch, and the worst of several 1 MB adversarial responses.

Run: ``python benchmarks/bench_reward.py``. Pinned to one core; best of several repeats (``time.perf_counter``).
Targets: under 20 ms for the cue-search batch, under 50 ms for any 1 MB response. The LFPC Stage II reward scores
1,024 agent trajectories (three turns, two crops, ~900 tokens of reasoning each): target under 100 ms; a 1 MB
trajectory (thousands of tool turns, every crop scored) under 250 ms.
"""

import json
import os
import random
import time

from locus_reward import cue_search, lfpc
from locus_reward.cue_search import compute_score
from locus_reward.ground_truth import dumps
from locus_reward.lfpc import compute_score_stage2
from locus_reward.lfpc_ground_truth import dumps as lfpc_dumps


REPEATS = 7
BATCH = 1024
GROUP = 8  # GRPO rollouts per prompt share one ground truth
MEGABYTE = 1 << 20
WORDS = "the cue shows a red sign with white letters near the left edge so its box must sit below the roof".split()


def typical_batch(rng: random.Random) -> list[dict[str, object]]:
    """~300 tokens (~1,500 characters) of reasoning, then a box answer, in the shapes models write."""
    answers = (
        "[{}, {}, {}, {}]",
        '{{"bbox_2d": [{}, {}, {}, {}]}}',
        '```json\n[{{"bbox_2d": [{}, {}, {}, {}], "label": "cue"}}]\n```',
    )
    batch = []
    for i in range(BATCH):
        if i % GROUP == 0:
            x, y = rng.randrange(0, 600), rng.randrange(0, 440)
            gt = dumps((float(x), float(y), float(x + 40), float(y + 40)), 640, 480)
        think = " ".join(rng.choice(WORDS) for _ in range(280))
        box = (x + rng.randrange(-8, 9), y + rng.randrange(-8, 9), x + 40 + rng.randrange(-8, 9), y + 40)
        answer = answers[i % len(answers)].format(*box)
        response = f"<think>\n{think}\n</think>\n<answer>{answer}</answer>"
        batch.append({"response": response, "response_length": 300, "ground_truth": gt})
    return batch


def lfpc_batch(rng: random.Random) -> list[dict[str, object]]:
    """Agent trajectories as EasyR1 decodes them: zoom, zoom again, answer; ~300 tokens of reasoning per turn."""
    tool_turn = (
        "\nuser\n<tool_response>\nZoomed in on the image to the region {} with label sign.\n"
        "</tool_response>\nassistant\n"
    )
    batch = []
    for i in range(BATCH):
        if i % GROUP == 0:
            x, y = rng.randrange(0, 1100), rng.randrange(0, 700)
            boxes = [(2 * x, 2 * y, 2 * x + 40, 2 * y + 40), (2 * x - 40, 2 * y - 40, 2 * x + 120, 2 * y + 100)]
            boxes = [tuple(max(0, v) for v in box) for box in boxes]
            gt = lfpc_dumps(
                "B", 2520, 1680, view_width=1260, view_height=840, choices=["a", "b", "c", "d"], boxes=boxes
            )
        text = ""
        for _ in range(2):
            box = [
                x - rng.randrange(0, 40),
                y - rng.randrange(0, 40),
                x + rng.randrange(20, 80),
                y + rng.randrange(20, 80),
            ]
            think = " ".join(rng.choice(WORDS) for _ in range(280))
            call = json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box, "label": "sign"}})
            text += f"<think>\n{think}\n</think>\n<tool_call>{call}</tool_call>" + tool_turn.format(box)
        think = " ".join(rng.choice(WORDS) for _ in range(280))
        text += f"<think>\n{think}\n</think>\n<answer>{rng.choice('ABCD')}</answer>"
        batch.append({"response": text, "response_length": 900, "ground_truth": gt})
    return batch


def adversarial_responses() -> dict[str, str]:
    """1 MB responses aimed at the tag scan, the box pattern and the number pattern."""
    fill = MEGABYTE
    return {
        "digits in an unclosed list": "<think></think><answer>[" + "1" * fill + "</answer>",
        "almost-boxes in the answer": "<think></think><answer>" + "[1, 2, 3, " * (fill // 10) + "</answer>",
        "almost-corner pairs": "<think></think><answer>" + "(1, 2), (" * (fill // 9) + "</answer>",
        "4 KB of almost-boxes": "<think>" + "x" * fill + "</think><answer>" + "[1, 2, 3, " * 409 + "</answer>",
        "repeated answer tags": "<answer>" * (fill // 8),
        "repeated think tags": "<think></think>" * (fill // 15),
        "unicode and control characters": "".join(chr(c) for c in range(1, 0x2001)) * (fill // 0x2000),
        "emoji think, valid answer": "<think>" + "🙂" * fill + "</think><answer>[1, 2, 3, 4]</answer>",
        "whitespace around nothing": " \n\t" * (fill // 3) + "<answer>[1, 2, 3, 4]</answer>",
    }


def lfpc_adversarial_responses() -> dict[str, str]:
    """1 MB trajectories aimed at the turn splitter, the call parser and the answer cascade."""
    fill = MEGABYTE
    call = '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 30, 40]}}</tool_call>'
    turn = "<think>x</think>" + call + "\nuser\n<tool_response>\nZoomed in.\n</tool_response>\nassistant\n"
    return {
        "thousands of tool turns": turn * (fill // len(turn)),
        "thousands of calls in one turn": "<think>x</think>" + call * (fill // len(call)),
        "unclosed tool responses": "<tool_response>" * (fill // 15),
        "4 KB answer of letters and options": "<think>x</think><answer>" + "(A) b B. " * 455 + "</answer>",
    }


def best_ms(fn, *args) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        cue_search._read_short_ground_truth.cache_clear()  # each repeat pays for parsing its ground truths
        lfpc._prepare_cached.cache_clear()
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    batch = typical_batch(random.Random(0))
    chars = sum(len(item["response"]) for item in batch) // BATCH
    print(f"typical batch: {BATCH} responses of {chars} characters in {best_ms(compute_score, batch):.1f} ms")
    gt = dumps((100.0, 100.0, 140.0, 140.0), 640, 480)
    worst_name, worst = "", 0.0
    for name, response in adversarial_responses().items():
        elapsed = best_ms(compute_score, [{"response": response, "response_length": 0, "ground_truth": gt}])
        if elapsed > worst:
            worst_name, worst = name, elapsed
    print(f"adversarial: worst 1 MB response ({worst_name}) in {worst:.1f} ms")
    agents = lfpc_batch(random.Random(0))
    chars = sum(len(item["response"]) for item in agents) // BATCH
    elapsed = best_ms(compute_score_stage2, agents)
    print(f"lfpc stage 2: {BATCH} trajectories of {chars} characters in {elapsed:.1f} ms")
    gt = agents[0]["ground_truth"]
    worst_name, worst = "", 0.0
    for name, response in (adversarial_responses() | lfpc_adversarial_responses()).items():
        elapsed = best_ms(compute_score_stage2, [{"response": response, "response_length": 0, "ground_truth": gt}])
        if elapsed > worst:
            worst_name, worst = name, elapsed
    print(f"lfpc adversarial: worst 1 MB response ({worst_name}) in {worst:.1f} ms")


if __name__ == "__main__":
    main()
