"""Benchmark ``locus-data build`` against the floor of work no build can skip.

    python benchmarks/bench_build.py --shape small        # ~3,000 examples from ~850 640x480 JPEGs, 2 workers
    python benchmarks/bench_build.py --shape large        # ~3,000 examples from ~1,200 mixed-size JPEGs (default)
    python benchmarks/bench_build.py --examples 20000     # the memory run

Two corpus shapes, both synthesized with :func:`locus_data.synth.synth` at COCO-like density (per image a few
usable tiny and small objects and a few specks below 16 px; 2% grayscale, as in train2014; the demo default of
``locus-data synth`` is much denser): ``small`` is a small corpus of 640x480 images with about 2.5 usable tiny
objects each, the shape of a quick ablation, demo or CI build where fixed start-up weighs most; ``large`` has
COCO's mixed sizes (640x480, 500x375, 427x640...) and about 1.5 usable tiny and 1.5 small objects per image, so a
build uses more images per example.

In one run it synthesizes the corpus, then ``--repeat`` times, alternately, (1) runs the real ``locus-data build
--workers N`` as a subprocess and times the whole command (interpreter start, annotation loading, planning,
decoding, writing, finalizing, stats), and (2) times the floor on the source images that build used: each decoded
once in a pool of the same worker count, started as the build starts its own (pool start-up included; the floor runs
in a fresh process, timed from the pool's start), and the bytes of each written once to a file. Each pair's ratio
build/floor is printed as it is measured, then the medians (a pair shares the machine's load of the moment, so the
ratios drift less than the times).

Memory is measured in one more build after the pairs, untimed: every 50 ms the sampler reads /proc for the build
process and all its descendants (reading a process's ``smaps_rollup`` walks its page tables: sampling the timed builds
slowed them by ~8 %, measured, a load the floor did not carry). It sums their RSS
(resident pages, counting pages shared between processes once per process, so it overstates) and their PSS
(proportional set size: shared pages split between the processes sharing them, the honest "all processes together"
figure). The peaks of both sums are printed. Linux only (it needs /proc).
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from unittest import mock

from PIL import Image

from locus_data.worker import pool_start_method


@dataclass(frozen=True)
class Shape:
    """A benchmark corpus."""

    spec: dict[str, tuple[int, int] | int]
    """objects per image: :class:`locus_data.synth.SynthSpec` fields (that module loads numpy, which the floor's
    process must not have loaded before its pool starts)"""
    sizes: tuple[tuple[int, int], ...] | None
    """image sizes, cycled; None: synth's COCO mix"""
    images_per_example: float
    """images to synthesize per example built, with some to spare (the build walks only as far as it needs)"""


SHAPES = {
    # ~2.5 usable tiny objects per 640x480 image: 3,060 examples use ~860 images
    "small": Shape(dict(tiny=(1, 4), small=(0, 3), large=(0, 1), specks=(1, 5), gray_every=50), ((640, 480),), 0.39),
    # tiny objects are the scarce kind: ~1.5 usable per image, 70% of the examples; 3,060 examples use ~1,220 images
    "large": Shape(dict(tiny=(0, 3), small=(0, 3), large=(0, 1), specks=(1, 5), gray_every=50), None, 0.7 / 1.3),
}


def _decode(path: str) -> int:
    with open(path, "rb") as f:
        data = f.read()
    Image.open(BytesIO(data)).load()
    return len(data)


def floor_seconds(paths: list[str], workers: int, sink: Path, method: str) -> float:
    """Decode each of ``paths`` once in a pool started as the build starts its own, and write each file's bytes once.

    Call it in a process that has not loaded numpy or pyarrow, as ``locus-data build`` starts its pool (forked where
    the process runs one thread, see :class:`locus_data.worker.WorkerPool`): :func:`main` runs it in a fresh one.
    """
    start = time.perf_counter()
    with multiprocessing.get_context(method).Pool(workers) as pool, open(sink, "wb") as out:
        for path, _ in zip(paths, pool.imap(_decode, paths, chunksize=4)):
            with open(path, "rb") as f:
                out.write(f.read())
    return time.perf_counter() - start


def floor_in_subprocess(paths: list[str], workers: int, work: Path) -> tuple[float, str]:
    """(seconds, pool start method) of :func:`floor_seconds` in a fresh process."""
    listing = work / "floor_paths.txt"
    listing.write_text("\n".join(paths))
    command = [sys.executable, __file__, "--floor", str(listing), "--workers", str(workers), "--work-dir", str(work)]
    seconds, method = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return float(seconds), method


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (every thread's /proc children list: a thread can start a process)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, read from /proc/PID/task/TID/children (a full /proc scan every 50 ms would
    take CPU from the build it measures)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += _children(pid)
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.peak_pss, self.peak_procs = pid, 0, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _tree(self.pid)
            totals = [_memory_kib(p) for p in pids]
            self.peak_rss = max(self.peak_rss, sum(t[0] for t in totals))
            self.peak_pss = max(self.peak_pss, sum(t[1] for t in totals))
            self.peak_procs = max(self.peak_procs, len(pids))
            self.stop.wait(0.05)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="large", help="corpus shape (default large)")
    p.add_argument("--examples", type=int, default=3000, help="train examples to build (val adds 2%%; default 3000)")
    p.add_argument("--workers", type=int, default=2, help="build and floor worker processes (default 2)")
    p.add_argument("--work-dir", help="where to put the synthetic set and the build (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--repeat", type=int, default=5, help="alternate build and floor this many times (default 5)")
    p.add_argument("--floor", metavar="LIST", help=argparse.SUPPRESS)  # internal: time the floor on LIST's paths
    args = p.parse_args()
    if args.floor:
        method = pool_start_method()
        paths = Path(args.floor).read_text().split("\n")
        print(floor_seconds(paths, args.workers, Path(args.work_dir) / "floor.bin", method), method)
        return 0

    # heavy: numpy and pyarrow, which a floor process (above) must not load
    import pyarrow.parquet as pq

    from locus_data import synth as synth_module
    from locus_data.synth import SynthSpec, synth

    bin_dir = Path(sys.executable).parent
    locus_data = (
        [str(bin_dir / "locus-data")]
        if (bin_dir / "locus-data").exists()
        else [sys.executable, "-m", "locus_data.cli"]
    )
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="locus_bench_"))
    shape = SHAPES[args.shape]
    num_val = max(20, args.examples // 50)
    num_images = max(60, int((args.examples + num_val) * shape.images_per_example))
    coco, out = work / f"coco-{args.shape}-{num_images}", work / "out"
    if not (coco / "annotations" / "instances_train2014.json").is_file():
        print(f"synthesizing {num_images} images in {coco} ...", flush=True)
        # synth cycles through its module's SIZES; the small shape is all 640x480
        with mock.patch.object(synth_module, "SIZES", list(shape.sizes or synth_module.SIZES)):
            synth(coco, num_images, seed=0, spec=SynthSpec(**shape.spec), progress=False)

    command = locus_data + [
        "build", "--config", "config/data/locus_default.yaml", "--coco-root", str(coco), "--out", str(out),
        "--workers", str(args.workers), "--quiet", f"num_train={args.examples}", f"num_val={num_val}",
    ]  # fmt: skip
    print(" ".join(command), flush=True)
    # Alternate build and floor: each pair runs under the same load of the moment, so its ratio is the figure.
    builds, floors = [], []
    paths: list[str] = []
    for pair in range(1, max(1, args.repeat) + 1):
        subprocess.run(["rm", "-rf", str(out)], check=True)
        start = time.perf_counter()
        rc = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
        builds.append(time.perf_counter() - start)
        if rc != 0:
            print(f"build failed with exit status {rc}")
            return rc
        if not paths:  # the same images every time: rows depend on the config, seed and files only
            used = []
            for split in ("train", "val"):
                used += pq.read_table(out / f"{split}.parquet", columns=["source_file"]).column(0).to_pylist()
            paths = [str(coco / "train2014" / name) for name in sorted(set(used))]
        floor, method = floor_in_subprocess(paths, args.workers, work)
        floors.append(floor)
        print(f"pair {pair}: build {builds[-1]:.2f} s, floor {floors[-1]:.2f} s, ratio {builds[-1] / floors[-1]:.2f}x",
              flush=True)  # fmt: skip
    # the memory run, apart from the timed ones
    subprocess.run(["rm", "-rf", str(out)], check=True)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = TreeSampler(proc.pid)
    peak.start()
    rc = proc.wait()
    peak.stop.set()
    peak.join()
    if rc != 0:
        print(f"build failed with exit status {rc}")
        return rc
    stats = json.loads((out / "stats.json").read_text())
    examples = sum(s["rows"] for s in stats["splits"].values())
    size_mb = sum((out / f"{s}.parquet").stat().st_size for s in ("train", "val")) / 1e6
    ratios = [b / f for b, f in zip(builds, floors)]
    build_s, floor_s = statistics.median(builds), statistics.median(floors)

    print(f"shape               {args.shape}: {examples} examples from {len(paths)} source images used "
          f"({size_mb:.0f} MB of parquet)")  # fmt: skip
    print(f"workers             {args.workers}")
    print(f"build (whole cmd)   {build_s:.2f} s median   {examples / build_s:.0f} examples/s")
    print(f"floor               {floor_s:.2f} s median   (decode {len(paths)} images once in a {method} pool + write "
          "their bytes once)")  # fmt: skip
    print(f"ratio build/floor   {statistics.median(ratios):.2f}x median of {len(ratios)} pairs "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")  # fmt: skip
    print(f"peak memory, sum over {peak.peak_procs} processes: PSS {peak.peak_pss / 1024:.0f} MiB, "
          f"RSS {peak.peak_rss / 1024:.0f} MiB (one more build, untimed)")  # fmt: skip
    if not args.keep and not args.work_dir:
        subprocess.run(["rm", "-rf", str(work)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
