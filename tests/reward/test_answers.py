"""The accuracy rule shared by the LFPC reward and the evaluators: option letters and normalized short answers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locus_reward.answers import choice_letter, extract_choice, final_answer, is_correct, normalize_answer
from locus_reward.parsing import MAX_ANSWER_CHARS


CHOICES = ["horizontal stripes", "vertical stripes", "checkerboard", "diagonal stripes"]


@pytest.mark.parametrize(
    ("prediction", "right"),
    [
        ("C", True),  # the bare letter
        ("(C)", True),
        ("C.", True),
        ("C) checkerboard", True),  # the letter, a delimiter, the option text
        ("The answer is C", True),  # an explicit statement
        ("checkerboard", True),  # the option's own text
        ("It is a Checkerboard.", True),  # the option's text, any case, inside a sentence
        ("c", False),  # lowercase letters are not letters of the cascade (and "c" is no option text)
        ("B", False),  # another option
        ("C or D", False),  # hedging names two options: none
        ("E", False),  # not one of the four letters
        ("", False),
    ],
)
def test_multiple_choice_accepts_the_letter_in_the_ways_models_write_it(prediction, right):
    assert is_correct(prediction, "C", CHOICES) is right


def test_option_text_containing_another_option_is_ambiguous():
    # "vertical stripes" contains no other option, but "stripes" alone names three: no single option, so wrong
    assert is_correct("vertical stripes", "B", CHOICES)
    assert not is_correct("stripes", "B", CHOICES)


@pytest.mark.parametrize(
    ("prediction", "answer", "right"),
    [
        ("Red.", "red", True),  # case and punctuation
        ("the  red   car", "A red car", True),  # articles and whitespace
        ("3.50", "3.5", True),  # numbers as numbers
        ("1,000", "1000", True),
        ("Three", "3", True),  # number words up to twenty
        ("+4", "4", True),
        ("35", "3.5", False),  # the decimal point is not punctuation to drop
        ("red car", "red", False),  # equality, not containment
        ("red or blue", "red", False),
        ("", "", False),  # an empty ground truth matches nothing
        ("the", "a", False),  # nothing left after dropping articles
    ],
)
def test_short_answers_compare_normalized(prediction, answer, right):
    assert is_correct(prediction, answer) is right


def test_overlong_and_non_string_predictions_are_wrong():
    # the reward bounds its regex work: a giant answer is wrong even if it starts with the right letter
    assert not is_correct("C" + " " * MAX_ANSWER_CHARS, "C", CHOICES)
    assert not is_correct(None, "C", CHOICES) and not is_correct(3, "3")  # type: ignore[arg-type]


def test_bench_helpers_moved_here_keep_their_behaviour():
    # locus-eval bench imports these; the cascade reads the answer block after the reasoning
    assert final_answer("<think>A?</think><answer> B </answer>") == "B"
    assert extract_choice("<think>Red is A.</think><answer>B</answer>", ["red", "green"]) == "B"
    assert choice_letter("A red car.", ["blue", "red"]) == "B"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.lists(st.text(max_size=12), max_size=9), st.text(max_size=4))
def test_never_raises(prediction, choices, answer):
    # rewards call this on whatever a policy writes and on whatever a ground truth holds
    assert is_correct(prediction, answer, choices) in (True, False)
    assert is_correct(prediction, answer) in (True, False)
    assert isinstance(normalize_answer(prediction), str)
    assert extract_choice(prediction, choices) in (None, *"ABCDEFGH")
