"""The two teacher tasks: what the teacher is shown, and which answers are kept.

* ``rationale`` (SFT baseline): the teacher sees the full image, the cue and the cue's box and writes a brief
  rationale of how the cue can be found. The SFT target is ``<think>rationale</think><answer>box</answer>``, so the
  rationale must not carry coordinates: the student would learn to copy numbers it cannot see into its reasoning.
  Answers with coordinate lists (``[12, 40, ...``, ``(12, 40)``), ``x1=``-style values, a mention of "the given box"
  or think/answer tags are **rejected and retried**, not stripped, because cutting numbers out of a sentence leaves
  broken text ("located at ."). Positions in words ("top left, behind the red car") are what we want.
* ``refexp`` (text-cue baseline): the teacher sees the full image, the box and (by default) the cue, and writes one
  referring expression of at most ``max_words`` words (25, the paper's "under 25 words" as the lead fixed it).
  Surrounding quotes and an ``Expression:`` label are trimmed; several lines, coordinates or too many words are
  rejected and retried.

Prompts are jinja files in ``locus_baselines/prompts/`` with ``<image>`` markers where the images go (full image, then
the
cue), rendered with ``box`` (the ground truth as ``[x1, y1, x2, y2]`` integers in the teacher's coordinate
convention), ``coord_note`` (what those numbers mean) and ``show_cue``.

>>> clean_refexp('"the red umbrella left of the bench."', max_words=25)
'the red umbrella left of the bench.'
>>> clean_rationale("The cue is at [12, 40, 88, 97].")
Traceback (most recent call last):
...
locus_baselines.teacher.TeacherError: invalid answer: rationale contains coordinates
"""

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Template

from locus_baselines.teacher import TeacherError
from locus_data.errors import UserError
from locus_data.images import open_image
from locus_data.problems import IMAGE_MARKER
from locus_data.rows import Row, image_format
from locus_reward.frames import check_coord_frame, to_model
from locus_reward.ground_truth import loads


TASKS = ("rationale", "refexp")
PROMPTS_DIR = Path(__file__).with_name("prompts")  # package data, so an installed copy finds its prompts
DEFAULT_PROMPTS = {"rationale": PROMPTS_DIR / "teacher_rationale.txt", "refexp": PROMPTS_DIR / "teacher_refexp.txt"}
COORD_NOTES = {
    "qwen2_5_vl": "absolute pixel coordinates in the image as you see it",
    "qwen3_vl": "relative coordinates on a 0-1000 scale of the image width and height",
    "original": "absolute pixel coordinates of the full image",
}

# "[12, 40", "(12.5, 40": the start of a coordinate list or a point, in any bracket style
_COORD_LIST = re.compile(r"[\[(]\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?", re.ASCII)
# "x1=12", "y: 40", "X2 = 88"
_COORD_VALUE = re.compile(r"\b[xy][12]?\s*[=:]\s*-?\d", re.ASCII | re.IGNORECASE)
# the student never sees a box, so a rationale must not talk about one it was given
_BOX_MENTION = re.compile(
    r"\b(?:given|provided|ground[- ]truth|specified)\s+(?:bounding\s+)?(?:box|coordinates?)\b", re.IGNORECASE
)
# tags of the student's output format, and the marker EasyR1 and LLaMA-Factory turn into an image
_FORMAT_TAG = re.compile(r"</?\s*(?:think|answer)\s*>|<image>", re.IGNORECASE)
_LABEL = re.compile(r"^(?:referring\s+)?expression\s*:\s*", re.IGNORECASE)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}


@dataclass
class TeacherTask:
    """One teacher task: its prompt template and how the box shown to the teacher is written."""

    name: str
    """rationale or refexp"""
    template: str
    """jinja source of the prompt, with one ``<image>`` marker per image sent"""
    teacher_coord_frame: str = "qwen2_5_vl"
    """coordinate convention of the teacher (Qwen2.5-VL-72B: absolute pixels of its own resized image)"""
    teacher_min_pixels: int | None = None
    """pixel floor applied before the teacher's processor (None: the server sends the stored image as is)"""
    teacher_max_pixels: int | None = None
    """pixel cap applied before the teacher's processor (None: the server sends the stored image as is)"""
    show_cue: bool = True
    """refexp only: also send the cropped cue image (the rationale task always sends it)"""
    max_words: int = 25
    """refexp only: longest accepted expression, in whitespace-separated words"""

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise UserError(f"unknown task {self.name!r}; expected one of {', '.join(TASKS)}")
        check_coord_frame(self.teacher_coord_frame)

    @property
    def images_sent(self) -> int:
        return 2 if self.name == "rationale" or self.show_cue else 1

    def teacher_box(self, answer: str) -> list[int]:
        """The ground-truth box in the teacher's coordinate convention, as integers (how Qwen models write them)."""
        gt = loads(answer)
        box = to_model(
            gt.box,
            gt.width,
            gt.height,
            self.teacher_coord_frame,
            min_pixels=self.teacher_min_pixels,
            max_pixels=self.teacher_max_pixels,
        )
        return [round(v) for v in box]

    def render(self, row: Row) -> str:
        """The prompt text for one row, checked to hold one ``<image>`` marker per image sent."""
        box = self.teacher_box(row.answer)
        text = Template(self.template).render(
            box=f"[{', '.join(map(str, box))}]",
            coord_note=COORD_NOTES[self.teacher_coord_frame],
            show_cue=self.show_cue,
        )
        markers = text.count(IMAGE_MARKER)
        if markers != self.images_sent:
            raise UserError(
                f"{self.name} prompt has {markers} {IMAGE_MARKER} marker(s) but {self.images_sent} image(s) are sent"
            )
        return text

    def content(self, row: Row) -> list[dict]:
        """OpenAI chat content parts: text pieces and ``data:`` image URLs in marker order."""
        pieces = self.render(row).split(IMAGE_MARKER)
        parts: list[dict] = []
        for i, piece in enumerate(pieces):
            if i != 0:
                image = row.image_bytes(i - 1)
                with open_image(image, f"{row.key} image {i - 1}"):  # over the size limit: this row fails, named
                    pass
                parts.append({"type": "image_url", "image_url": {"url": data_url(image)}})
            if piece.strip():
                parts.append({"type": "text", "text": piece.strip("\n")})
        return parts

    def clean(self, text: str) -> str:
        """The answer to keep, or TeacherError(kind="invalid answer") saying why it is rejected."""
        if self.name == "rationale":
            return clean_rationale(text)
        return clean_refexp(text, self.max_words)


def load_task(name: str, prompt_path: str | Path | None = None, **options) -> TeacherTask:
    """A TeacherTask with its prompt read from ``prompt_path`` (default: ``prompts/teacher_<name>.txt`` here)."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    path = Path(prompt_path) if prompt_path is not None else DEFAULT_PROMPTS[name]
    if not path.is_file():
        raise UserError(f"teacher prompt not found: {path}")
    return TeacherTask(name, path.read_text(encoding="utf-8"), **options)


def data_url(image: bytes) -> str:
    """``data:image/<format>;base64,...`` with the format of the stored bytes (sent as is, never re-encoded)."""
    return f"data:image/{image_format(image)};base64,{base64.b64encode(image).decode('ascii')}"


def _invalid(detail: str) -> TeacherError:
    return TeacherError("invalid answer", detail)


def _check_no_coordinates(text: str, what: str) -> None:
    if _COORD_LIST.search(text) or _COORD_VALUE.search(text):
        raise _invalid(f"{what} contains coordinates")
    if _BOX_MENTION.search(text):
        raise _invalid(f"{what} refers to the given box")


def clean_rationale(text: str) -> str:
    """Trim a rationale; unwrap one ``<think>...</think>`` if the teacher added it; reject leaks (see module doc)."""
    text = text.strip()
    if text.lower().startswith("<think>") and text.lower().endswith("</think>"):
        text = text[len("<think>") : -len("</think>")].strip()
    if not text:
        raise _invalid("empty rationale")
    if _FORMAT_TAG.search(text):
        raise _invalid("rationale contains think/answer/image tags")
    _check_no_coordinates(text, "rationale")
    return text


def clean_refexp(text: str, max_words: int) -> str:
    """Trim quotes and an ``Expression:`` label; reject empty, multi-line, long or coordinate-bearing answers."""
    text = _LABEL.sub("", text.strip()).strip()
    while len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    if not text:
        raise _invalid("empty expression")
    if "\n" in text:
        raise _invalid("more than one line")
    if _FORMAT_TAG.search(text):
        raise _invalid("expression contains think/answer/image tags")
    _check_no_coordinates(text, "expression")
    words = len(text.split())
    if words > max_words:
        raise _invalid(f"expression has {words} words (max {max_words})")
    return text
