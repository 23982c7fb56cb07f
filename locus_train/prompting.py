"""How EasyR1 turns a row's ``problem`` into chat messages: one home, so every trainer and tool builds the same prompt.

EasyR1 (``verl.utils.dataset.RLHFDataset._build_messages`` at b44b311) renders the format prompt as a jinja template
whose only variable is ``content``, splits the result on the literal ``<image>`` (each marker becomes an image part,
empty text pieces are dropped) and sends one user turn. The TRL trainer, the prompt-length check, the SFT exporter
and the evaluator all call these functions, so a model reads the same text whichever path it is trained or scored on.

>>> build_messages("<image>\\nThe full image.\\n<image>\\nThe cue.")
[{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': '\\nThe full image.\\n'}, \
{'type': 'image'}, {'type': 'text', 'text': '\\nThe cue.'}]}]
>>> render_prompt("Where is it?", "{{ content | trim }} Answer in <answer></answer>.")
'Where is it? Answer in <answer></answer>.'
"""

import json
from pathlib import Path
from typing import Any

from jinja2 import Template

from locus_data.problems import IMAGE_MARKER


def render_prompt(problem: str, format_prompt: str | None = None) -> str:
    """Apply a format prompt (jinja source, or None for none) the way EasyR1 does."""
    if not format_prompt:
        return problem
    # EasyR1 renders with a bare jinja2 Template: no custom filters, no autoescape
    return Template(format_prompt.strip()).render(content=problem)


def load_format_prompt(path: str | Path | None) -> str | None:
    """Read a format prompt file; a missing file is an error here (EasyR1 would silently drop it)."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"format prompt not found: {path}")
    return path.read_text(encoding="utf-8")


def build_messages(prompt: str) -> list[dict]:
    """Split a rendered prompt on ``<image>`` into one user turn of image and text parts."""
    content: list[dict] = []
    for i, piece in enumerate(prompt.split(IMAGE_MARKER)):
        if i != 0:
            content.append({"type": "image"})
        if piece:
            content.append({"type": "text", "text": piece})
    return [{"role": "user", "content": content}]


def chat_prompt(processor: Any, problem: str, format_prompt: str | None = None) -> str:
    """The text EasyR1 feeds the model for a dataset ``problem``: format prompt, ``<image>`` split, chat template."""
    messages = build_messages(render_prompt(problem, format_prompt))
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def think_prefilled(prompt: str) -> bool:
    """True when the chat template opens the think block itself (Qwen3-VL-Thinking), so responses start inside it.

    >>> think_prefilled("<|im_start|>assistant\\n<think>\\n"), think_prefilled("<|im_start|>assistant\\n")
    (True, False)
    """
    return prompt.rstrip().endswith("<think>")


def with_system_prompt(chat_template: str, system: str) -> str:
    """A chat template that opens with ``system`` as the system turn whenever the messages bring none.

    EasyR1 renders one user turn per row, so a crop-tool agent's system prompt (its tool schema) reaches training
    this way: the dataset's prompt becomes [system, user(image, question)], the prompt ``locus-eval agent`` renders.

    >>> template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    >>> from jinja2 import Template
    >>> Template(with_system_prompt(template, 'Say "hi".')).render(messages=[{"role": "user", "content": "Q"}])
    '<system>Say "hi".<user>Q'
    """
    literal = json.dumps(system, ensure_ascii=False)  # a valid jinja string literal: quotes and newlines escaped
    prologue = (
        "{%- if messages[0]['role'] != 'system' %}"
        f"{{%- set messages = [{{'role': 'system', 'content': {literal}}}] + messages %}}"
        "{%- endif %}"
    )
    return prologue + chat_template


def set_system_prompt(processor: Any, system: str) -> None:
    """Give ``processor`` (and its tokenizer) :func:`with_system_prompt`'s template in place."""
    template = with_system_prompt(processor.chat_template, system)
    processor.chat_template = template
    processor.tokenizer.chat_template = template
