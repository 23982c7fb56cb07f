"""The accuracy rule: is a model's answer the ground-truth answer? One home for `locus-eval bench`, the agent
evaluator and the LFPC reward (:mod:`locus_reward.lfpc`).

* **Multiple choice** (the question has options; the ground truth is the option's letter ``A``-``H``): the answer
  names one option by the ordered cascade of :func:`choice_letter` -- a bare letter (``B``, ``(B)``, ``B.``), an
  explicit statement (``The answer is B``), a leading letter with a delimiter (``B) red``, ``B. red``), the only
  parenthesized letter, the option's own text, the only standalone capital letter -- and that letter is the ground
  truth's. An answer naming two options names none (hedging cannot pay).
* **Short answer** (no options): equal after :func:`normalize_answer` -- lowercase; punctuation and whitespace
  dropped; the articles a/an/the dropped; numbers compared as numbers (``3.50`` = ``3.5``, ``1,000`` = ``1000``,
  ``three`` = ``3`` for zero to twenty). Equality, not containment: an answer listing several candidates is wrong.

Pure and total: nothing here raises, whatever the input; an answer longer than ``MAX_ANSWER_CHARS`` is wrong, which
bounds the regular-expression work a reward does on adversarial text.

>>> is_correct("(B) green", "B", ["red", "green", "blue", "white"])
True
>>> is_correct("The Eiffel tower.", "eiffel tower"), is_correct("3.0 apples", "three apples")
(True, True)
"""

import math
import re
from collections.abc import Sequence

from locus_reward.parsing import MAX_ANSWER_CHARS, parse_response


LETTERS = "ABCDEFGH"
"""option letters, in order; a question has at most eight options"""
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
"""lmms-eval's multiple-choice instruction (V*, HR-Bench): the answer :func:`choice_letter` reads back best"""
SHORT_ANSWER_INSTRUCTION = "Answer the question using a single word or phrase."
"""the LLaVA / lmms-eval short-answer instruction: :func:`normalize_answer` equality can only score short answers"""
ARTICLES = frozenset({"a", "an", "the"})
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
# a number (optional sign when not glued to a word, thousands commas, decimals) or a run of letters and digits;
# everything between tokens -- punctuation, whitespace, symbols -- is dropped
_TOKEN = re.compile(r"(?<![^\W_])[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?![0-9])|[^\W_]+")
_NUMBER = re.compile(r"[-+]?[0-9][0-9,]*(?:\.[0-9]+)?")


def mcq_text(question: str, options: Sequence[str]) -> str:
    """A multiple-choice question as the benchmarks ask it: the question, ``A. option`` lines, the instruction.

    >>> print(mcq_text(" What colour is the cup? ", ["red", "green"]))
    What colour is the cup?
    A. red
    B. green
    Answer with the option's letter from the given choices directly.
    """
    lines = [question.strip()] + [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join(lines) + "\n" + MCQ_INSTRUCTION


def question_prompt(question: str, choices: Sequence[str] | None = None) -> str:
    """The text a model is asked (after the image): :func:`mcq_text` with choices, else the question and the
    short-answer instruction. One home for the question text of `locus-eval bench`, the agent and LFPC training.

    >>> question_prompt("How many boats are moored?")
    'How many boats are moored?\\nAnswer the question using a single word or phrase.'
    """
    if choices:
        return mcq_text(question, choices)
    return question.strip() + "\n" + SHORT_ANSWER_INSTRUCTION


def final_answer(response: str) -> str:
    """The part of a response that answers: after the last ``</think>``, inside ``<answer>`` when present.

    >>> final_answer("<think>B looks wrong.</think><answer>C</answer>")
    'C'
    >>> final_answer("<think>Maybe B.</think> The answer is C.")
    'The answer is C.'
    """
    if not isinstance(response, str):
        return ""
    # the reward's reader finds the answer block (one rule, linear time); prompts without tags answer in plain text
    answer = parse_response(response).answer
    return (answer if answer is not None else response.rsplit("</think>", 1)[-1]).strip()


def extract_choice(response: str, options: Sequence[str]) -> str | None:
    """The option letter a whole response picks, or None: :func:`choice_letter` of its :func:`final_answer`.

    >>> extract_choice("The answer is (C).", ["red", "green", "blue", "white"])
    'C'
    >>> extract_choice("A red car.", ["blue", "red"])  # the article "A" is not a choice; the text "red" is
    'B'
    """
    return choice_letter(final_answer(response), options)


def choice_letter(text: str, options: Sequence[str]) -> str | None:
    """The option letter an answer text picks, or None. An ordered cascade; the first rule that decides wins:

    1. the answer is just a letter: ``B``, ``(B)``, ``B.``;
    2. an explicit statement: ``the answer is B``, ``Answer: (B)``, ``option B``;
    3. it starts with a letter and a delimiter: ``B. red``, ``(B) red``, ``B) red``, ``B: red``;
    4. exactly one distinct ``(X)`` anywhere;
    5. exactly one option's text appears (case-insensitive, whole words);
    6. exactly one distinct standalone capital letter among the valid ones.

    Option text (5) is tried before bare letters (6) because "A" is also an English article. Only the letters of
    the given options count (a "C" does not answer a two-option question).

    >>> choice_letter("B) green, clearly", ["red", "green", "blue", "white"])
    'B'
    >>> choice_letter("It is green or blue.", ["red", "green", "blue", "white"]) is None  # two options named
    True
    """
    if not isinstance(text, str) or not options or len(options) > len(LETTERS):
        return None
    options = [option if isinstance(option, str) else "" for option in options]
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


def normalize_answer(text: str) -> str:
    """A short answer reduced to what equality should compare (see the module docstring); "" for non-strings.

    >>> normalize_answer("  The  Red-Brick house! ")
    'red brick house'
    >>> normalize_answer("About 1,000.50 metres"), normalize_answer("-0"), normalize_answer("Twelve")
    ('about 1000.5 metres', '0', '12')
    """
    if not isinstance(text, str):
        return ""
    words = []
    for token in _TOKEN.findall(text.lower()):
        if token in ARTICLES:
            continue
        words.append(_number(token) if _NUMBER.fullmatch(token) else NUMBER_WORDS.get(token, token))
    return " ".join(words)


def _number(token: str) -> str:
    value = float(token.replace(",", ""))
    if not math.isfinite(value):  # hundreds of digits: compare as written
        return token.lstrip("+")
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def answer_key(response: str, choices: Sequence[str] | None = None) -> str | None:
    """What a whole response answers, reduced as :func:`is_correct` compares it: the option letter with
    ``choices``, else the normalized short answer; None for no readable answer. Two responses give the same answer
    exactly when their keys are equal and not None (resolution selection's "the answer differs").

    >>> answer_key("<think>hm</think><answer>(B)</answer>", ["cat", "dog"]), answer_key("The Dog.")
    ('B', 'dog')
    >>> answer_key("B or A", ["cat", "dog"]) is None, answer_key("...") is None
    (True, True)
    """
    text = final_answer(response)
    if len(text) > MAX_ANSWER_CHARS:
        return None
    if choices:
        return choice_letter(text, choices)
    return normalize_answer(text) or None


def is_correct(prediction: str | None, answer: str, choices: Sequence[str] | None = None) -> bool:
    """Whether ``prediction`` (the answer text, tags removed) answers ``answer``.

    With ``choices`` the ground truth ``answer`` is an option letter and the prediction must pick that option
    (:func:`choice_letter`); without, the normalized texts must be equal and not empty. None (no answer), a
    non-string or a prediction longer than ``MAX_ANSWER_CHARS`` is wrong.

    >>> is_correct("The answer is B", "B", ["cat", "dog"]), is_correct("dog", "B", ["cat", "dog"])
    (True, True)
    >>> is_correct("B or A", "B", ["cat", "dog"]), is_correct(None, "B", ["cat", "dog"])
    (False, False)
    >>> is_correct("7", "seven"), is_correct("7 or 8", "7")
    (True, False)
    """
    if not isinstance(prediction, str) or not isinstance(answer, str) or len(prediction) > MAX_ANSWER_CHARS:
        return False
    if choices:
        return choice_letter(prediction.strip(), choices) == answer.strip()
    expected = normalize_answer(answer)
    return bool(expected) and normalize_answer(prediction) == expected
