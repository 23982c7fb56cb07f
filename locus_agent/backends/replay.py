"""Recorded assistant turns instead of a model: for re-scoring a run, and for tests that need a known trajectory.

The file is JSONL, one ``{"id": ..., "turns": ["...", ...]}`` object a line. Turn k of a question's episode is the
k-th string, as the model would have written it (the loop appends ``<|im_end|>``). A question may have several lines:
rollout k of its group (:attr:`Request.sample`) uses line k, cycling, so evaluation (rollout 0) uses the first.
Running past a line's turns gives an empty turn, which ends the episode without an answer. An id the file lacks is
a one-line error naming the file and the id.

With a tokenizer, turns are counted and cut like an engine's output: a turn longer than the request's budget is
truncated (``finished`` False), and the loop can charge tool turns to a token budget. Without one, no tokens are
counted.
"""

import json
from pathlib import Path
from typing import Any

from locus_agent.backends.base import Generation, Request, budgets
from locus_data.errors import UserError


class ReplayBackend:
    """Plays recorded turns back by question id, rollout and turn."""

    def __init__(self, path: str | Path, tokenizer: Any = None):
        """``tokenizer``: the checkpoint's (or its processor), to count and cut turns as an engine would."""
        self.path = Path(path)
        self.lines = read_replay(self.path)
        self.tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        if self.tokenizer is not None:
            self.count_text_tokens = self._count_text_tokens  # the loop charges tool turns only when it can count

    def check_ids(self, keys: list[str]) -> None:
        """Raise a UserError for the first id the file has no line for (call it before a long run)."""
        for key in keys:
            self._lines(key)

    def _lines(self, key: str) -> list[list[str]]:
        lines = self.lines.get(str(key))
        if lines is None:
            raise UserError(f"replay file {self.path} has no line for id {key!r}; record its turns or leave it out")
        return lines

    def _count_text_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: list[Request], max_new_tokens: int | list[int]) -> list[Generation]:
        generations = []
        for request, limit in zip(requests, budgets(max_new_tokens, len(requests))):
            lines = self._lines(request.key)
            turns = lines[request.sample % len(lines)]
            if request.turn >= len(turns):
                generations.append(Generation(text="", num_tokens=0, finished=True, token_ids=[]))
            else:
                generations.append(self._generation(turns[request.turn], limit))
        return generations

    def _generation(self, text: str, limit: int) -> Generation:
        if self.tokenizer is None:
            return Generation(text=text, num_tokens=0, finished=True)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) + 1 > limit:  # the end-of-turn token would not fit either: cut as an engine stops
            kept = ids[:limit]
            return Generation(self.tokenizer.decode(kept), len(kept), finished=False, token_ids=kept)
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return Generation(text=text, num_tokens=len(ids) + 1, finished=True, token_ids=[*ids, end])


def read_replay(path: Path) -> dict[str, list[list[str]]]:
    """``{id: [turns of line 1, turns of line 2, ...]}`` from a replay file; UserError naming file:line otherwise."""
    if not path.is_file():
        raise UserError(f"replay file {path} not found; give --replay a JSONL file of {{'id', 'turns'}} lines")
    lines: dict[str, list[list[str]]] = {}
    with path.open(encoding="utf-8") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(raw)
            except ValueError as err:
                raise UserError(f"{where}: not a JSON object ({err})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise UserError(f'{where}: a replay line needs an "id" and a list of "turns"')
            turns = row.get("turns")
            if not isinstance(turns, list) or not all(isinstance(turn, str) for turn in turns):
                raise UserError(f'{where}: "turns" must be a list of strings (the assistant turns in order)')
            lines.setdefault(str(row["id"]), []).append(turns)
    if not lines:
        raise UserError(f"replay file {path} holds no lines")
    return lines
