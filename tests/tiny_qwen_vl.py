"""Tiny offline Qwen-VL checkpoints for tests: a re-export of :mod:`locus_train.tiny_model`, where the builder lives
so ``make demo-train`` can write one without the test tree."""

from locus_train.tiny_model import (
    CHAT_TEMPLATE,
    KINDS,
    SPECIAL_TOKENS,
    THINKING_CHAT_TEMPLATE,
    build_model,
    build_processor,
    build_tokenizer,
    save_checkpoint,
)


__all__ = [
    "CHAT_TEMPLATE",
    "KINDS",
    "SPECIAL_TOKENS",
    "THINKING_CHAT_TEMPLATE",
    "build_model",
    "build_processor",
    "build_tokenizer",
    "save_checkpoint",
]
