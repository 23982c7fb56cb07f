"""``locus-data export-text-cue``: the text-cue baseline as an EasyR1-ready dataset.

    locus-data export-text-cue --data data/locus_cue --annotations data/locus_cue/annotations_refexp.jsonl \\
        --out data/locus_text_cue

Each example with an ``ok`` referring expression becomes a text-grounding row with the same contract as the main
dataset, so the same reward and evaluator work unchanged:

* ``problem``: one ``<image>`` and the paper's instruction with the expression (backbone-neutral, like the main
  dataset: coordinate convention and think/answer tags come from the recipe's format prompt);
* ``images``: the full image only (the first entry of the source row, bytes or path as stored);
* ``answer`` and every metadata column: unchanged (same ground truth, same reward).

Rows are streamed batch by batch and written with the source schema and its metadata, so ``datasets`` and EasyR1
read the result like the source. Failed annotations and examples without one are skipped and counted.
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from locus_baselines.annotations import load_for_export
from locus_baselines.export_sft import prepare_out
from locus_data.config import SPLITS, split_path
from locus_data.errors import UserError, reports_user_errors
from locus_data.outputs import staged_output
from locus_data.problems import TEXT_CUE_PROBLEM
from locus_data.rows import example_key, open_parquet, read_batches, require_columns, split_files
from locus_data.schema import ANSWER, IMAGE_ID, IMAGES, PROBLEM


ROW_GROUP_SIZE = 128
"""rows per Parquet row group, as the main dataset's default (bounds a reader's memory per group)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset directory with train.parquet / val.parquet")
    parser.add_argument("--annotations", required=True, help="refexp annotations JSONL from `annotate`")
    parser.add_argument("--out", required=True, help="output directory for train.parquet / val.parquet")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to export")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out directory")


def text_cue_problem(expression: str) -> str:
    """The student's question for one referring expression.

    >>> print(text_cue_problem("the red umbrella left of the bench"))
    <image>
    Please find the object described by the following text in the image: the red umbrella left of the bench
    Give its bounding box in the image.
    """
    return TEXT_CUE_PROBLEM.format(expression=expression)


@reports_user_errors
def run(args: argparse.Namespace) -> int:
    files = split_files(args.data, args.splits)
    missing = [split for split in args.splits if split not in files]
    if missing:  # asked for (the default is both) but not there: say so rather than export fewer splits
        raise UserError(
            f"{args.data} has no {', '.join(split_path('.', s).name for s in missing)}; "
            f"pass --splits {' '.join(files)} to export only what is there"
        )
    annotations = load_for_export(args.annotations, "refexp")
    out = Path(args.out)
    prepare_out(out, args.data, [*files.values(), Path(args.annotations)], args.overwrite)
    for path in files.values():  # a parquet of another schema: one line naming it, before anything is written
        require_columns(path, open_parquet(path).schema_arrow.names, (PROBLEM, IMAGES, ANSWER, IMAGE_ID))
    owned = {split_path(".", split).name for split in SPLITS}
    # written aside and moved into --out only once complete: an error leaves no half-written parquet behind
    with staged_output(out, owned.__contains__) as stage:
        counts = {
            split: _export_split(split, path, split_path(stage, split), annotations) for split, path in files.items()
        }
        if not any(c["written"] for c in counts.values()):
            raise UserError(
                f"no ok annotation in {args.annotations} matches {args.data} (keys hash each row's answer and "
                "image_id, so annotations of a rebuilt dataset do not match)"
            )
    for split, c in counts.items():
        print(
            f"export-text-cue {split}: {c['written']} written, {c['failed']} failed annotations skipped, "
            f"{c['missing']} without annotation -> {split_path(out, split)}"
        )
    return 0


def _export_split(split: str, src: Path, dst: Path, annotations: dict) -> Counter[str]:
    parquet = open_parquet(src)
    schema = parquet.schema_arrow  # keeps the source metadata (e.g. Hugging Face image features)
    counts: Counter[str] = Counter()
    index = 0
    with pq.ParquetWriter(dst, schema) as writer:
        progress = tqdm(total=parquet.metadata.num_rows, desc=f"export-text-cue {split}", unit="ex")
        for batch in read_batches(src, batch_rows=ROW_GROUP_SIZE):
            rows = batch.to_pylist()
            kept = []
            for row in rows:
                record = annotations.get(example_key(split, index, row[ANSWER], row[IMAGE_ID]))
                index += 1
                if record is None or record.status != "ok":
                    counts["missing" if record is None else "failed"] += 1
                    continue
                kept.append({**row, PROBLEM: text_cue_problem(record.text), IMAGES: row[IMAGES][:1]})
            if kept:
                writer.write_table(pa.Table.from_pylist(kept, schema=schema), row_group_size=ROW_GROUP_SIZE)
                counts["written"] += len(kept)
            progress.update(len(rows))
        progress.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="locus-data export-text-cue", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
