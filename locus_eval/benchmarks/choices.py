"""Reading a multiple-choice answer: the part of a response that answers, and the option letter it picks."""

import re

from locus_eval.benchmarks.prompts import LETTERS
from locus_reward.parsing import parse_response


def final_answer(response: str) -> str:
    """The part of a response that answers: after the last ``</think>``, inside ``<answer>`` when present.

    >>> final_answer("<think>B looks wrong.</think><answer>C</answer>")
    'C'
    >>> final_answer("<think>Maybe B.</think> The answer is C.")
    'The answer is C.'
    """
    # the reward's reader finds the answer block (one rule, linear time); prompts without tags answer in plain text
    answer = parse_response(response).answer
    return (answer if answer is not None else response.rsplit("</think>", 1)[-1]).strip()


def extract_choice(response: str, options: list[str]) -> str | None:
    """The option letter a response picks, or None. An ordered cascade; the first rule that decides wins:

    1. the answer is just a letter: ``B``, ``(B)``, ``B.``;
    2. an explicit statement: ``the answer is B``, ``Answer: (B)``, ``option B``;
    3. it starts with a letter and a delimiter: ``B. red``, ``(B) red``, ``B: red``;
    4. exactly one distinct ``(X)`` anywhere;
    5. exactly one option's text appears (case-insensitive, whole words);
    6. exactly one distinct standalone capital letter among the valid ones.

    Option text (5) is tried before bare letters (6) because "A" is also an English article.

    >>> extract_choice("The answer is (C).", ["red", "green", "blue", "white"])
    'C'
    >>> extract_choice("A red car.", ["blue", "red"])  # the article "A" is not a choice; the text "red" is
    'B'
    """
    text = final_answer(response)
    valid = LETTERS[: len(options)]
    letter = f"([{valid}])"
    rules = [
        rf"^\(?{letter}\)?[.:]?$",
        rf"(?i:answer|option|choice)\s*(?i:is)?\s*[:：]?\s*\(?{letter}\)?(?![A-Za-z])",
        rf"^\(?{letter}(?:\)|[.:])",
    ]
    for rule in rules:
        match = re.search(rule, text)
        if match:
            return match.group(1)
    parenthesized = set(re.findall(rf"\({letter}\)", text))
    if len(parenthesized) == 1:
        return parenthesized.pop()
    lowered = text.lower()
    named = [
        LETTERS[i]
        for i, option in enumerate(options)
        if option.strip() and re.search(rf"(?<!\w){re.escape(option.strip().lower())}(?!\w)", lowered)
    ]
    if len(named) == 1:
        return named[0]
    standalone = set(re.findall(rf"(?<![A-Za-z]){letter}(?![A-Za-z])", text))
    if len(standalone) == 1:
        return standalone.pop()
    return None
