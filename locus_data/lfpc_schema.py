"""The Parquet layout of an LFPC export (``locus-data export-lfpc``): the rows EasyR1 trains crop-tool agents on.

One row per question; EasyR1 reads three columns (the recipes' ``data.prompt_key``, ``image_key``, ``answer_key``):

* ``problem``: one ``<image>`` marker, then the question text of :func:`locus_reward.answers.question_prompt`
  (lettered options and the letter instruction for multiple choice, else the short-answer instruction). EasyR1
  renders it as one user turn: the image, then the text -- the turn the agent's evaluation renders.
* ``images``: ONE ``{"bytes", "path"}`` struct: ``bytes`` are the *view* -- the image file the model is shown (the
  manifest's ``view_image`` after resolution selection, else the original), stored unchanged; ``path`` is the
  absolute path of the ORIGINAL image. EasyR1's ``process_image`` opens ``bytes`` only, so the stock code never
  sees the path; the multi-turn rollout reads ``multi_modal_data["images"][0]["path"]`` to cut crops from the
  original (decoded once per prompt, shared by its rollouts). The original must therefore exist at that path on
  every rollout worker (shared storage, or the same layout on every node).
* ``answer``: the LFPC ground-truth JSON (:mod:`locus_reward.lfpc_ground_truth`): answer, choices, nested boxes in
  original pixels, the original's size and the view's size (the frame the model's boxes are written in).

Every other column is metadata EasyR1 passes through untouched (:data:`METADATA_FIELDS`). The files carry no
Hugging Face ``Image`` feature metadata on purpose: ``datasets`` then hands EasyR1 the struct as a plain dict, path
included, instead of a decoded PIL image without it.
"""

import pyarrow as pa

from locus_data.schema import ANSWER, IMAGE_STRUCT, IMAGES, PROBLEM, SPLIT, VQA_ID, VQA_SELECTION


ID, SELECTION = VQA_ID, VQA_SELECTION  # the manifest's own names, carried into the export
VIEW = "view"
ORIGINAL_WIDTH, ORIGINAL_HEIGHT = "original_width", "original_height"
VIEW_WIDTH, VIEW_HEIGHT = "view_width", "view_height"
VIEW_SCALE, NUM_BOXES = "view_scale", "num_boxes"
"""the metadata columns other modules read by name"""
VIEW_SELECTED, VIEW_ORIGINAL = "selected", "original"
VIEWS = (VIEW_SELECTED, VIEW_ORIGINAL)
"""``view`` values: the row shows the manifest's selected ``view_image``, or the original itself"""
EXPORT_INFO = "export.json"
"""beside the split files: what was exported, from where, with which settings and counts"""

METADATA_FIELDS = [
    pa.field(ID, pa.string()),  # the manifest id (unique across both splits)
    pa.field(SPLIT, pa.string()),
    pa.field(VIEW, pa.string()),  # VIEW_SELECTED or VIEW_ORIGINAL: which image the bytes hold
    pa.field(ORIGINAL_WIDTH, pa.int32()),
    pa.field(ORIGINAL_HEIGHT, pa.int32()),
    pa.field(VIEW_WIDTH, pa.int32()),  # the stored view's size (= the ground truth's view_width/height)
    pa.field(VIEW_HEIGHT, pa.int32()),
    pa.field(VIEW_SCALE, pa.float64()),  # view width / original width (1.0: the original itself)
    pa.field(NUM_BOXES, pa.int32()),  # nested GT boxes (Stage II needs >= 1)
    pa.field(SELECTION, pa.string()),  # the manifest row's selection record as JSON; null without one
]
SCHEMA = pa.schema(
    [pa.field(PROBLEM, pa.string()), pa.field(IMAGES, pa.list_(IMAGE_STRUCT)), pa.field(ANSWER, pa.string())]
    + METADATA_FIELDS
)
"""the columns and types of an export's train.parquet and val.parquet"""
