"""Transfer benchmarks scored by LOCUS itself: V*Bench, HR-Bench 4K/8K, RefCOCO/+/g grounding (ACC@0.5).

One module per job: a loader per benchmark (:mod:`.vstar`, :mod:`.hrbench`, :mod:`.refcoco`, all returning
:mod:`.items`), the prompts (:mod:`.prompts`), scoring (:mod:`.scoring`), and
the run that ties them together (:mod:`.evaluate`).

Inference is ordinary full-image inference (one image, one question); the data pixel limits are the same as in
training. Layouts read from local disk (``docs/evaluation.md`` sets each next to the published protocol):

* **V\\*Bench** (``craigwu/vstar_bench``), either layout:

  - the per-sample folders ``direct_attributes/`` and ``relative_position/``, each holding ``<name>.jpg`` +
    ``<name>.json`` (``question``, ``options``, ``target_object``, ``bbox`` as COCO ``[x, y, w, h]`` per target).
    The raw annotations list the correct option first (the original evaluation scores by likelihood), so options
    are shuffled with a fixed seed per question;
  - the bench's root ``test_questions.jsonl`` (``image``, ``text`` with ``(A) ...`` options, ``category``,
    ``question_id``, ``label``), which lmms-eval's ``vstar_bench`` and other harnesses read: options stay in the
    file's order. GT boxes come from the per-sample json next to the image when it is there.

  ``--data`` names the folder (folders protocol) or the jsonl file (jsonl protocol); the protocol is recorded.
* **HR-Bench** (``hr_bench_4k.tsv`` / ``hr_bench_8k.tsv``): tab-separated, columns ``index, question, answer,
  category, A, B, C, D, image`` and ``cycle_category``. The image cell is base64 image bytes or, in VLMEvalKit's
  convention (to store each image once, not four times), another row's ``index`` (a cell of at most 64
  characters). Accuracy is computed within each cycle, then averaged over cycles.
* **RefCOCO/+/g**: one sample per referring expression, as lmms-eval's ``refcoco_bbox_rec_*`` (it expands every
  expression of an object into its own sample) and the Qwen-VL / InternVL grounding scripts score them. Layouts:
  the lmms-eval parquet (``lmms-lab-encoder/RefCOCO``, ``.../RefCOCOplus``, ``.../RefCOCOg``: ``image`` struct,
  ``bbox`` COCO ``[x, y, w, h]``, ``answer`` = the object's list of expressions), the per-sentence jsonl of the
  grounding scripts (``{"image", "sent", "bbox": [x1, y1, x2, y2], "width", "height"}``), or LOCUS's own jsonl
  (``{"image", "bbox": [x, y, w, h], "refexp": str or list}``); images in a jsonl are paths relative to the file.
  Boxes are read with the reward's parser and mapped with the reward's frame code: Qwen2.5-VL pixels of the seen
  image, Qwen3-VL 0..1000. No "best of two readings".
"""

from locus_eval.benchmarks.evaluate import BENCHMARKS, load, protocol_note, run
from locus_eval.benchmarks.hrbench import read_hrbench
from locus_eval.benchmarks.items import Item, Loaded, read_jsonl, xywh_to_xyxy
from locus_eval.benchmarks.prompts import GROUNDING_PROMPT, MCQ_INSTRUCTION, mcq_prompt
from locus_eval.benchmarks.refcoco import read_refcoco, refcoco_split
from locus_eval.benchmarks.scoring import grounding_metrics, score_grounding, score_mcq
from locus_eval.benchmarks.vstar import load_vstar, read_vstar, shuffled_options
from locus_reward.answers import LETTERS, extract_choice, final_answer


__all__ = [
    "BENCHMARKS",
    "GROUNDING_PROMPT",
    "LETTERS",
    "MCQ_INSTRUCTION",
    "Item",
    "Loaded",
    "extract_choice",
    "final_answer",
    "grounding_metrics",
    "load",
    "load_vstar",
    "mcq_prompt",
    "protocol_note",
    "read_hrbench",
    "read_jsonl",
    "read_refcoco",
    "read_vstar",
    "refcoco_split",
    "run",
    "score_grounding",
    "score_mcq",
    "shuffled_options",
    "xywh_to_xyxy",
]
"""``locus-eval bench`` and the tests use these; each lives in the module named for its job"""
