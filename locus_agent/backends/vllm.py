"""vLLM offline inference on a GPU (imported lazily; not testable on CPU CI -- the test is skip-marked).

A request is its prompt text plus all its images (``multi_modal_data``); vLLM's processor expands each image
placeholder itself. The image limit per prompt is the task's (1 + the most crops an episode can receive for an
agent); pixel limits come from the images (an agent's are pre-sized to their frame) and the checkpoint's processor.
"""

from pathlib import Path
from typing import Any

from locus_agent.backends.base import Generation, Request, Sampling, budgets
from locus_agent.processor import load_processor, vision_token_ids


class VLLMBackend:
    """vLLM offline inference; the image limit per prompt is set for the task, pixel limits come from the images."""

    def __init__(
        self,
        model_path: str | Path,
        limit_images: int,
        tensor_parallel_size: int = 1,
        sampling: Sampling | None = None,
        **engine: Any,
    ):
        try:
            from vllm import LLM  # optional GPU backend
        except ImportError as err:
            raise ImportError(
                "the vllm backend needs vLLM on a CUDA machine: pip install -e '.[vllm]' "
                "(or use --backend hf, which runs on CPU)"
            ) from err
        self.processor = load_processor(model_path)
        self.sampling = sampling
        # vLLM's logit bias, as EasyR1 gives its rollouts: the model must never write a vision marker itself
        self.logit_bias = dict.fromkeys(sorted(vision_token_ids(self.processor)), -100.0)
        self.llm = LLM(
            model=str(model_path),
            limit_mm_per_prompt={"image": limit_images},  # vLLM's default of 1 image would reject cue-search prompts
            tensor_parallel_size=tensor_parallel_size,
            seed=0,
            **engine,
        )

    def count_text_tokens(self, text: str) -> int:
        """Tokens of chat text as written (each image placeholder counts one pad)."""
        return len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: list[Request], max_new_tokens: int | list[int]) -> list[Generation]:
        from vllm import SamplingParams  # optional GPU backend

        params = [
            SamplingParams(max_tokens=limit, logit_bias=self.logit_bias or None, **self._options(request))
            for request, limit in zip(requests, budgets(max_new_tokens, len(requests)))
        ]
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
            ids = list(completion.token_ids)
            generations.append(Generation(completion.text, len(ids), finished, ids))
        return generations

    def _options(self, request: Request) -> dict[str, Any]:
        sampling = self.sampling
        if sampling is None:
            return {"temperature": 0.0}  # greedy
        options = {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k or -1}
        if sampling.seed is not None:
            # one seed per rollout and turn: rollouts of one question that shared a seed would sample alike
            options["seed"] = sampling.seed + 1_000_003 * request.sample + request.turn
        return options
