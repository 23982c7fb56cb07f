"""transformers ``generate``: left-padded batches, float32 on CPU, bfloat16 on GPU; greedy unless sampling is asked.

A request is rendered as its prompt text plus all its images (an agent's full context so far), so a multi-turn
episode re-enters as one prompt each turn. The model never writes vision markers (a sampled ``<|vision_start|>``
breaks the next forward pass): they are suppressed, as the TRL trainer and EasyR1's ``logit_bias`` do.
"""

from pathlib import Path
from typing import Any

from locus_agent.backends.base import Generation, Request, Sampling, budgets
from locus_agent.processor import load_processor, pixel_limits, set_pixel_limits, vision_token_ids
from locus_reward import frames


class HFBackend:
    """transformers ``generate`` with left padding; float32 on CPU, bfloat16 on GPU."""

    def __init__(
        self,
        model_path: str | Path,
        attn_implementation: str | None = None,
        device: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        sampling: Sampling | None = None,
    ):
        """``min_pixels``/``max_pixels``: the processor's pixel limits (None keeps the checkpoint's); an agent sets
        ``max_pixels`` to at least its view and crop budgets so the processor never resizes what it is handed.
        ``sampling``: sample instead of greedy decoding."""
        import torch  # heavy: loaded only when a model runs
        from transformers import AutoModelForImageTextToText  # heavy: loaded only when a model runs

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = load_processor(model_path)
        if min_pixels is not None or max_pixels is not None:
            set_pixel_limits(self.processor, min_pixels, max_pixels)
        self.processor.tokenizer.padding_side = "left"  # decoder-only batching: prompts must end at the same column
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype, **kwargs)
        self.model.to(self.device).eval()
        self.sampling = sampling
        self.suppress_tokens = sorted(vision_token_ids(self.processor))

    def inputs(self, requests: list[Request]):
        """Processor outputs for a batch, on the model's device."""
        images = [image for request in requests for image in request.images]
        for request in requests:
            if request.segments:
                self._check_sizes(request.images)
        batch = self.processor(
            text=[request.prompt for request in requests],
            images=images or None,
            padding=True,
            add_special_tokens=False,  # the chat template already wrote every special token, as in EasyR1
            return_tensors="pt",
        )
        return batch.to(self.device)

    def _check_sizes(self, images: list[Any]) -> None:
        # an agent's images are pre-sized to their frame; a processor that resized them again would move every box
        image_processor = self.processor.image_processor
        factor = image_processor.patch_size * image_processor.merge_size
        low, high = pixel_limits(self.processor)
        for image in images:
            if frames.smart_resize(image.height, image.width, factor, low, high) != (image.height, image.width):
                raise ValueError(
                    f"the processor would resize a {image.width}x{image.height} agent image (pixel limits {low}.."
                    f"{high}, factor {factor}): build the backend with max_pixels at least the view and crop budgets"
                )

    def count_text_tokens(self, text: str) -> int:
        """Tokens of chat text as written (each image placeholder counts one pad)."""
        return len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: list[Request], max_new_tokens: int | list[int]) -> list[Generation]:
        import torch  # heavy: loaded only when a model runs

        limits = budgets(max_new_tokens, len(requests))
        batch = self.inputs(requests)
        kwargs: dict[str, Any] = {"do_sample": False}
        if self.sampling is not None:
            sampling = self.sampling
            kwargs = {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
            kwargs["top_k"] = sampling.top_k  # 0 turns transformers' top-k filter off (its default would be 50)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            output = self.model.generate(
                **batch,
                max_new_tokens=max(limits),
                suppress_tokens=self.suppress_tokens or None,
                pad_token_id=self.processor.tokenizer.pad_token_id,
                **kwargs,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
        # one batch runs to the largest budget; each request keeps what its own budget allows
        return [self._generation(ids[:limit]) for ids, limit in zip(new_tokens, limits)]

    def _generation(self, ids: list[int]) -> Generation:
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        end = next((i + 1 for i, token in enumerate(ids) if token in eos), None)
        kept = ids if end is None else ids[:end]
        text = self.processor.tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text=text, num_tokens=len(kept), finished=end is not None, token_ids=kept)
