"""Benchmark the Attention-in-Box answer-row probe against eager ``output_attentions`` and a plain SDPA forward.

    python benchmarks/bench_aib.py                          # CPU, float32, tiny Qwen2.5-VL, a 2246 x 1582 image
    python benchmarks/bench_aib.py --kind qwen3_vl
    python benchmarks/bench_aib.py --device cuda            # GPU, bfloat16, CUDA allocator peaks

One long input: a tiny random-weight Qwen-VL (``locus_train/tiny_model.py``: 2 decoder layers, 4 heads, 2 KV heads) and
a V*-sized image at native resolution (the processor's pixel cap raised above it), so the sequence is L >= 4K tokens
as for Qwen2.5-VL-7B on V*. Three variants run the same forward over the same ``input_ids``:

* ``sdpa``: the plain forward (SDPA kernels, one logit kept, no cache) -- the floor;
* ``probe``: :func:`locus_eval.aib.layer_rows` with ``probe`` (SDPA forward + captured answer rows);
* ``eager``: :func:`locus_eval.aib.layer_rows` with ``eager`` (the decoder in eager attention, ``output_attentions``).

Each variant runs in its own subprocess, so every peak is clean: on CPU the kernel's peak-RSS counter (``VmHWM``) is
reset through ``/proc/self/clear_refs`` once the model and inputs are ready, and read after the forward; on CUDA the
allocator's peak (``torch.cuda.max_memory_allocated``) is reset the same way. Printed per variant: the peak during
the forward, the part of it above what was resident before the forward, and the forward's time (best of
``--repeat``); then the ratios against ``sdpa``. Linux only (it needs /proc).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


VARIANTS = ("sdpa", "probe", "eager")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(variant: str, checkpoint: Path, width: int, height: int, device: str, repeat: int) -> dict:
    """Run one variant in this process and return its figures (called in a fresh subprocess per variant)."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from locus_agent.processor import load_processor
    from locus_eval import aib
    from locus_train.prompting import chat_prompt

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    processor = load_processor(checkpoint)
    # native resolution: lift the tiny processor's cap above the image, as the real checkpoints' limits are
    image_processor = processor.image_processor
    image_processor.min_pixels, image_processor.max_pixels = 56 * 56, 16384 * 28 * 28
    image_processor.size = {"shortest_edge": image_processor.min_pixels, "longest_edge": image_processor.max_pixels}
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    prompt = chat_prompt(processor, "<image>\nWhat is the colour of the umbrella? Answer with a letter.")
    inputs = processor(text=[prompt], images=[image], add_special_tokens=False, return_tensors="pt").to(device)
    model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=dtype, attn_implementation="sdpa")
    model.to(device).eval()
    length = int(inputs["input_ids"].shape[1])

    def forward() -> None:
        if variant == "sdpa":
            with torch.inference_mode():
                model(**inputs, use_cache=False, logits_to_keep=1)
        else:
            aib.layer_rows(model, dict(inputs), variant)
        if device == "cuda":
            torch.cuda.synchronize()

    times, peaks, above = [], [], []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
            before = _rss_kib("VmRSS") * 1024
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else _rss_kib("VmHWM") * 1024
        peaks.append(peak)
        above.append(peak - before)
    return {
        "variant": variant,
        "seq_len": length,
        "image_tokens": int(inputs["image_grid_thw"][0].prod()) // image_processor.merge_size**2,
        "peak_bytes": max(peaks),
        "above_bytes": max(above),
        "seconds": min(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("qwen2_5_vl", "qwen3_vl"), default="qwen2_5_vl", help="tiny backbone")
    parser.add_argument("--width", type=int, default=2246, help="image width (V*'s typical size by default)")
    parser.add_argument("--height", type=int, default=1582, help="image height")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: bf16, allocator peaks")
    parser.add_argument("--repeat", type=int, default=2, help="forwards per variant (best time, max peak)")
    parser.add_argument("--variant", choices=VARIANTS, default=None, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--checkpoint", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        result = measure(args.variant, args.checkpoint, args.width, args.height, args.device, args.repeat)
        print(json.dumps(result))
        return

    from locus_train.tiny_model import save_checkpoint  # the tests' tiny checkpoints, built offline

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_checkpoint(Path(tmp), args.kind)
        results = {}
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--checkpoint", str(checkpoint)]
            command += ["--width", str(args.width), "--height", str(args.height), "--device", args.device]
            command += ["--repeat", str(args.repeat)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"bench_aib: the {variant} run failed:\n{done.stderr[-3000:]}")
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])

    mib = 1024 * 1024
    floor = results["sdpa"]
    unit = "CUDA allocator" if args.device == "cuda" else "RSS"
    print(
        f"{args.kind} tiny, {args.width}x{args.height} image, L = {floor['seq_len']} tokens "
        f"({floor['image_tokens']} image), {args.device}"
    )
    header = ["variant", f"peak {unit} (MiB)", "above pre-forward (MiB)", "time (s)", "peak / sdpa", "above / sdpa"]
    print("| " + " | ".join([*header, "time / sdpa"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        r = results[variant]
        print(
            f"| {variant} | {r['peak_bytes'] / mib:.0f} | {r['above_bytes'] / mib:.0f} | {r['seconds']:.2f} "
            f"| {r['peak_bytes'] / floor['peak_bytes']:.2f}x | {r['above_bytes'] / max(floor['above_bytes'], 1):.2f}x "
            f"| {r['seconds'] / floor['seconds']:.2f}x |"
        )


if __name__ == "__main__":
    main()
