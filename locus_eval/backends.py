"""Greedy generation with HF transformers (CPU, attention analysis) or vLLM (GPU throughput).

Both backends take the same requests: a chat prompt already rendered with the checkpoint's template, and the images
after EasyR1's ``process_image`` resize (:func:`locus_train.images.process_image`), so the model sees exactly what
it saw in training.
The processor then applies its own ``smart_resize`` with the checkpoint's pixel limits, as in EasyR1.

torch, transformers and vllm are imported inside the functions that need them: ``locus-eval score --help`` must
work on a machine with none of them.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from locus_reward.options import PixelLimits
from locus_train.processor import load_processor
from locus_train.recipe import DEFAULT_FRAME


@dataclass
class GenerationConfig:
    """How responses are generated; saved with the predictions so a resumed run cannot silently change it."""

    max_new_tokens: int = 2048
    """generation budget per response (thinking models need EasyR1's ``max_response_length`` or more)"""
    pixels: PixelLimits = DEFAULT_FRAME.limits
    """EasyR1 ``data.min_pixels``/``data.max_pixels``: images are resized into them before the processor"""
    batch_size: int = 8
    """prompts per generate call (HF); vLLM schedules the whole chunk itself"""


@dataclass
class Request:
    """One prompt to complete."""

    prompt: str
    """chat-templated text ending with the generation prompt"""
    images: list[Any] = field(default_factory=list)
    """PIL images in prompt order, already resized by :func:`locus_train.images.process_image`"""


@dataclass
class Generation:
    """One completed response."""

    text: str
    """decoded without special tokens, as EasyR1 hands it to the reward"""
    num_tokens: int
    """generated tokens including the end-of-turn token"""
    finished: bool
    """False when the response hit ``max_new_tokens`` (truncated)"""


class Backend(Protocol):
    processor: Any

    def generate(self, requests: list[Request], max_new_tokens: int) -> list[Generation]: ...


class HFBackend:
    """transformers ``generate`` with left padding; float32 on CPU, bfloat16 on GPU."""

    def __init__(self, model_path: str | Path, attn_implementation: str | None = None, device: str | None = None):
        import torch  # heavy: loaded only when a model runs
        from transformers import AutoModelForImageTextToText  # heavy: loaded only when a model runs

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = load_processor(model_path)
        self.processor.tokenizer.padding_side = "left"  # decoder-only batching: prompts must end at the same column
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype, **kwargs)
        self.model.to(self.device).eval()

    def inputs(self, requests: list[Request]):
        """Processor outputs for a batch, on the model's device."""
        images = [image for request in requests for image in request.images]
        batch = self.processor(
            text=[request.prompt for request in requests],
            images=images or None,
            padding=True,
            add_special_tokens=False,  # the chat template already wrote every special token, as in EasyR1
            return_tensors="pt",
        )
        return batch.to(self.device)

    def generate(self, requests: list[Request], max_new_tokens: int) -> list[Generation]:
        import torch  # heavy: loaded only when a model runs

        batch = self.inputs(requests)
        with torch.inference_mode():
            output = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
        return [self._generation(ids) for ids in new_tokens]

    def _generation(self, ids: list[int]) -> Generation:
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        end = next((i + 1 for i, token in enumerate(ids) if token in eos), None)
        kept = ids if end is None else ids[:end]
        text = self.processor.tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text=text, num_tokens=len(kept), finished=end is not None)


class VLLMBackend:
    """vLLM offline inference; the image limit per prompt is set for the task, pixel limits come from the images."""

    def __init__(self, model_path: str | Path, limit_images: int, tensor_parallel_size: int = 1, **engine: Any):
        try:
            from vllm import LLM  # optional GPU backend
        except ImportError as err:
            raise ImportError(
                "the vllm backend needs vLLM on a CUDA machine: pip install -e '.[vllm]' "
                "(or use --backend hf, which runs on CPU)"
            ) from err
        self.processor = load_processor(model_path)
        self.llm = LLM(
            model=str(model_path),
            limit_mm_per_prompt={"image": limit_images},  # vLLM's default of 1 image would reject cue-search prompts
            tensor_parallel_size=tensor_parallel_size,
            seed=0,
            **engine,
        )

    def generate(self, requests: list[Request], max_new_tokens: int) -> list[Generation]:
        from vllm import SamplingParams  # optional GPU backend

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)  # greedy
        prompts = [
            {"prompt": request.prompt, "multi_modal_data": {"image": request.images}}
            if request.images
            else {"prompt": request.prompt}
            for request in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        generations = []
        for output in outputs:
            completion = output.outputs[0]
            finished = completion.finish_reason == "stop"
            generations.append(Generation(completion.text, len(completion.token_ids), finished))
        return generations


BACKENDS = ("hf", "vllm")


def load_backend(name: str, model_path: str | Path, limit_images: int = 1, **kwargs: Any) -> Backend:
    """Build a backend by name; ``kwargs`` go to the backend's constructor."""
    if name == "hf":
        return HFBackend(model_path, **kwargs)
    if name == "vllm":
        return VLLMBackend(model_path, limit_images=limit_images, **kwargs)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
