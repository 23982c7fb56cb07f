"""Tiny random-weight Qwen2.5-VL / Qwen3-VL checkpoints built offline, for CPU tests and the TRL demo.

Nothing comes from a hub: the tokenizer is a byte-level BPE with no merges (every byte is a token, so any text
encodes) plus the Qwen special tokens, the image processor is the PIL one (no torchvision), the weights are random.
Checkpoints are saved with the *stock* ``processor_class`` so they load through the same
``locus_agent.processor.load_processor`` path users run.

Write one from the command line (``make demo-train`` does)::

    python -m locus_train.tiny_model OUT_DIR [--kind qwen2_5_vl|qwen3_vl] [--thinking]
"""

import argparse
import json
from pathlib import Path


SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen-style template: content lists with image parts, a default system turn, the generation prompt. The Thinking
# variant pre-opens the think block the way Qwen3-VL-*-Thinking templates do.
_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{{ GEN_SUFFIX }}{% endif %}"
)
CHAT_TEMPLATE = _TEMPLATE.replace("{{ GEN_SUFFIX }}", "")
THINKING_CHAT_TEMPLATE = _TEMPLATE.replace("{{ GEN_SUFFIX }}", "<think>\n")

# (stock processor class, patch size, processor min/max pixels). Pixel limits are small to keep tests fast.
KINDS = {
    "qwen2_5_vl": ("Qwen2_5_VLProcessor", 14, 56 * 56, 448 * 448),
    "qwen3_vl": ("Qwen3VLProcessor", 16, 64 * 64, 448 * 448),
}


def build_tokenizer(chat_template: str = CHAT_TEMPLATE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # heavy: only when a checkpoint is built
    from transformers import Qwen2TokenizerFast

    alphabet = sorted(set(pre_tokenizers.ByteLevel.alphabet()))
    backend = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL_TOKENS)
    # transformers 4.x type-checks the processor's tokenizer against Qwen2Tokenizer(Fast)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def build_processor(kind: str = "qwen2_5_vl", chat_template: str = CHAT_TEMPLATE):
    import transformers  # heavy: only when a checkpoint is built

    from locus_agent.processor import image_only

    stock, patch, min_pixels, max_pixels = KINDS[kind]
    image_processor = transformers.Qwen2VLImageProcessor(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch, temporal_patch_size=2, merge_size=2
    )
    tokenizer = build_tokenizer(chat_template)
    return image_only(getattr(transformers, stock))(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
    )


def build_model(tokenizer, kind: str = "qwen2_5_vl"):
    import torch  # heavy: only when a checkpoint is built
    import transformers

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64)  # fmt: skip
    if kind == "qwen3_vl":
        config_cls, model_cls = transformers.Qwen3VLConfig, transformers.Qwen3VLForConditionalGeneration
        text.update(head_dim=16, rope_scaling={"rope_type": "default", "mrope_section": [4, 2, 2],
                                               "mrope_interleaved": True})  # fmt: skip
        vision.update(patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[1])
    else:
        config_cls, model_cls = transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration
        # head_dim = 64 / 4 = 16, and mrope_section must sum to head_dim / 2
        text.update(rope_scaling={"type": "mrope", "mrope_section": [4, 2, 2]})
        vision.update(patch_size=14, window_size=112, fullatt_block_indexes=[1])
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = model_cls._from_config(config, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def save_checkpoint(path: str | Path, kind: str = "qwen2_5_vl", thinking: bool = False) -> Path:
    """Write a tiny model + processor to ``path`` as a released checkpoint would look (stock processor_class)."""
    path = Path(path)
    processor = build_processor(kind, THINKING_CHAT_TEMPLATE if thinking else CHAT_TEMPLATE)
    build_model(processor.tokenizer, kind).save_pretrained(path)
    processor.save_pretrained(path)
    stock = KINDS[kind][0]
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        file = path / name
        if file.is_file():
            config = json.loads(file.read_text())
            if "processor_class" in config or name != "preprocessor_config.json":
                config["processor_class"] = stock
            file.write_text(json.dumps(config, indent=2))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m locus_train.tiny_model", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="checkpoint directory to write")
    parser.add_argument("--kind", choices=sorted(KINDS), default="qwen2_5_vl", help="backbone family")
    parser.add_argument("--thinking", action="store_true", help="chat template pre-opens <think> (Qwen3-VL-Thinking)")
    args = parser.parse_args(argv)
    print(f"wrote {save_checkpoint(args.out, args.kind, args.thinking)}")


if __name__ == "__main__":
    main()
