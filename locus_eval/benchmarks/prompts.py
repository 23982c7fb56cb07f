"""The prompts a benchmark item is asked with: lettered multiple choice, or a grounding request."""

from locus_eval.benchmarks.items import Item
from locus_reward.answers import MCQ_INSTRUCTION, mcq_text


__all__ = ["GROUNDING_PROMPT", "MCQ_INSTRUCTION", "mcq_prompt"]
GROUNDING_PROMPT = 'Locate "{refexp}" in the image and output its bounding box [x1, y1, x2, y2] in JSON format.'


def mcq_prompt(item: Item) -> str:
    """The image marker, then the question, lettered options and the lmms-eval instruction (:func:`mcq_text`)."""
    return "<image>\n" + mcq_text(item.question, item.options)
