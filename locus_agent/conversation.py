"""The chat text of an agent episode, one turn at a time (Qwen ChatML, DeepEyes' tool protocol).

An episode's context grows append-only, so a token engine never re-tokenizes what it already holds:

* the first prompt: system prompt (``prompts/<coord_frame>.txt``, the tool schema inside), then the user turn with
  the full image and the question, rendered with the checkpoint's own chat template (or, with no processor at hand,
  the Qwen ChatML it writes), ending with the generation prompt;
* each model turn: the text the model wrote, then ``<|im_end|>`` when it stopped there;
* each tool turn: ``"\\n<|im_start|>user\\n<tool_response>\\n"``, per call either the crop's image placeholder and
  ``"Zoomed in on the image to the region [x1, y1, x2, y2] with label L.\\n"`` or ``"Error: <reason>.\\n"``, then
  ``"</tool_response><|im_end|>\\n<|im_start|>assistant\\n"`` and the generation prefix.

The generation prefix is what the chat template writes after ``<|im_start|>assistant\\n`` for a new turn
(``<think>\\n`` for Qwen3-VL-Thinking, else empty), read off the rendered first prompt, so every turn opens the way
the first one did. The same context is kept as chat messages (images as PIL parts) for API backends; the checkpoint's
template renders those messages to exactly the appended text (a test checks it on the tiny checkpoints). Decoded
without special tokens, the model and tool turns are what :func:`locus_reward.tool_calls.split_trajectory` splits.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

from locus_agent.crop_tool import CropResult
from locus_agent.view import check_agent_frame
from locus_reward.tool_calls import TOOL_NAME, TOOL_RESPONSE_CLOSE, TOOL_RESPONSE_OPEN


PROMPTS_DIR = Path(__file__).with_name("prompts")
"""system prompts per coordinate frame, with a ``{tools}`` slot for :data:`TOOL_SCHEMA` (shipped as package data)"""
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
"""one image in chat text; the processor expands the pad to the image's visual tokens"""
ASSISTANT_OPEN = f"{IM_START}assistant\n"
TOOL_SCHEMA = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Zoom in on a region of the image: the region is cut from the full-resolution original "
        "image and shown to you.",
        "parameters": {
            "type": "object",
            "properties": {
                "bbox_2d": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 4,
                    "maxItems": 4,
                    "description": "the region as [x1, y1, x2, y2]: top-left and bottom-right corners, in the "
                    "coordinates of the image you see",
                },
                "label": {"type": "string", "description": "what the region shows"},
            },
            "required": ["bbox_2d"],
        },
    },
}
"""the crop tool's function schema, as Qwen's tool template writes it into the system prompt"""


@cache
def system_prompt(coord_frame: str) -> str:
    """The agent's system prompt for a backbone family: how to call the tool, in the frame its boxes are written in."""
    check_agent_frame(coord_frame)
    return with_tool_schema((PROMPTS_DIR / f"{coord_frame}.txt").read_text(encoding="utf-8"))


def with_tool_schema(text: str) -> str:
    """A system prompt file's text with :data:`TOOL_SCHEMA` written where it says ``{tools}``.

    >>> with_tool_schema("Tools: {tools}\\n")[:37]
    'Tools: {"type": "function", "function'
    """
    return text.replace("{tools}", json.dumps(TOOL_SCHEMA)).strip()


def first_messages(question: str, image: Any, system: str) -> list[dict]:
    """The opening chat: the system prompt, then one user turn with the full image before the question."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": question}]},
    ]


def render_prompt(messages: list[dict], processor: Any = None) -> str:
    """The chat text of ``messages`` with the generation prompt: the processor's chat template, or Qwen ChatML.

    >>> render_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
    '<|im_start|>system\\nS<|im_end|>\\n<|im_start|>user\\nQ<|im_end|>\\n<|im_start|>assistant\\n'
    """
    if processor is not None:
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text = "".join(f"{IM_START}{m['role']}\n{_content_text(m['content'])}{IM_END}\n" for m in messages)
    return text + ASSISTANT_OPEN


def _content_text(content: str | list[dict]) -> str:
    if isinstance(content, str):
        return content
    return "".join(IMAGE_PLACEHOLDER if part["type"] == "image" else part["text"] for part in content)


def generation_prefix(prompt: str) -> str:
    """What the template writes after the last ``<|im_start|>assistant\\n`` (``<think>\\n`` for thinking templates).

    >>> generation_prefix("<|im_start|>user\\nQ<|im_end|>\\n<|im_start|>assistant\\n<think>\\n")
    '<think>\\n'
    """
    start = prompt.rfind(ASSISTANT_OPEN)
    if start < 0:
        raise ValueError("the chat template wrote no assistant generation prompt (<|im_start|>assistant)")
    return prompt[start + len(ASSISTANT_OPEN) :]


def model_turn(text: str, finished: bool, prefix: str) -> tuple[str, dict]:
    """Chat text and message of a model turn: what it wrote, closed with ``<|im_end|>`` when it stopped there."""
    return text + (IM_END if finished else ""), {"role": "assistant", "content": prefix + text}


def tool_turn(results: list[CropResult], prefix: str) -> tuple[str, list[Any], dict]:
    """Chat text, images (in placeholder order) and message of the tool turn answering one model turn's calls."""
    parts: list[dict] = [{"type": "text", "text": f"{TOOL_RESPONSE_OPEN}\n"}]
    images = []
    for result in results:
        if result.ok:
            images.append(result.image)
            parts.append({"type": "image", "image": result.image})
        parts.append({"type": "text", "text": result.message + "\n"})
    parts.append({"type": "text", "text": TOOL_RESPONSE_CLOSE})
    text = f"\n{IM_START}user\n{_content_text(parts)}{IM_END}\n{ASSISTANT_OPEN}{prefix}"
    return text, images, {"role": "user", "content": parts}
