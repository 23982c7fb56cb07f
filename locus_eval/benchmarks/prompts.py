"""The prompts a benchmark item is asked with: lettered multiple choice, or a grounding request."""

from locus_eval.benchmarks.items import Item
from locus_reward.answers import LETTERS


MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
GROUNDING_PROMPT = 'Locate "{refexp}" in the image and output its bounding box [x1, y1, x2, y2] in JSON format.'


def mcq_prompt(item: Item) -> str:
    """Question, lettered options, and the lmms-eval instruction to answer with the letter."""
    lines = [item.question.strip()] + [f"{LETTERS[i]}. {option}" for i, option in enumerate(item.options)]
    return "<image>\n" + "\n".join(lines) + "\n" + MCQ_INSTRUCTION
