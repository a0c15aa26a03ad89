"""The drill's checking logic: numbers to the precision they were written, shapes, hints, and the widget flow."""

from __future__ import annotations

import pytest
from torch import nn

import nbcount
from nbcount.drill import Question, ask, check, parse_number, parse_shape

PARAMS = 128 * 64 * 9 + 128  # Conv2d(64, 128, 3): 73,856


@pytest.mark.parametrize("text", ["73,856", "73856", "73 856", "73_856", "73,856 params", "~73.86k", "7.39e4"])
def test_right_answers_in_every_spelling(text: str) -> None:
    assert check(text, PARAMS).correct, text


@pytest.mark.parametrize("text, hint", [("73,728", "a bias"), ("147,712", "FLOPs (2 per MAC)"),
                                        ("36,928", "MACs where FLOPs"), ("75k", "1.02×")])
def test_wrong_answers_get_the_answer_and_a_hint(text: str, hint: str) -> None:
    """73,728 forgets the 128 biases; 2× / ½× is the MAC–FLOP slip; "75k" is off by more than its ±500."""
    verdict = check(text, PARAMS)
    assert not verdict.correct and "73,856" in verdict.message and hint in verdict.message


def test_precision_as_written() -> None:
    """1.05M means 1,050,000 ± 5,000; 1.0M means ± 50,000; a number written out in full must be exact."""
    assert parse_number("1.05M") == (1_050_000, 5_000)
    assert check("1.05M", 1_050_624).correct and not check("1.0M", 1_050_624).correct
    assert not check("1,050,625", 1_050_624).correct
    assert check("1.9 GiB", 124_439_808 * 16).correct  # 1.9·2^30 ± 0.05·2^30 holds 1,991,036,928
    assert check("7B", 6_738_415_616).correct and not check("6.7B", 6_800_000_000).correct
    assert parse_number("two") is None and "Could not read" in check("two", 5).message
    assert "Type an answer" in check("  ", 5).message


def test_shapes() -> None:
    """(1, 64, 112, 112), 1x64x112x112 and 64×112×112 (batch left out) are right; the wrong axis is named."""
    expected = (1, 64, 112, 112)
    assert parse_shape("1x64x112x112") == expected and parse_shape("[1, 64, 112, 112]") == expected
    assert check("(1, 64, 112, 112)", expected).correct and check("64×112×112", expected).correct
    wrong = check("(1, 64, 111, 112)", expected)
    assert not wrong.correct and "axis 2 differs" in wrong.message
    assert not check("73,856", expected).correct


def test_a_question_checks_and_reveals() -> None:
    """The answer key is the derivation's value; Check writes the verdict and unfolds the derivation."""
    params = nbcount.count(nn.Conv2d(64, 128, 3), (1, 64, 8, 8)).derive("")["params"]
    q = ask("Parameters of Conv2d(64, 128, 3)?", params, 1)
    assert q.expected == PARAMS and q.title.startswith("Q1. ")
    box = q.widget()
    reveal = box.children[3]
    assert reveal.selected_index is None and box.children[2].value == ""
    assert q.answer("73,856").correct and reveal.selected_index == 0 and "Right" in box.children[2].value
    assert not q.answer("73,728").correct and "Not quite" in box.children[2].value
    bundle = q._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Q1. Parameters") and "application/vnd.jupyter.widget-view+json" in bundle


def test_answer_keys_from_steps_shapes_and_bytes() -> None:
    """A step (BatchNorm's buffers), a shape section and derived bytes all give an answer key."""
    bn = nbcount.count(nn.BatchNorm2d(256), (1, 256, 4, 4)).derive("")
    assert Question("buffers?", bn["memory"].step("buffers")).expected == 256 + 256 + 1
    assert Question("shape?", bn["shape"]).expected == (1, 256, 4, 4)
    report = nbcount.count(nn.Linear(4, 4), (1, 4))
    assert Question("bytes?", report.checkpoint_bytes()).expected == (4 * 4 + 4) * 4
    with pytest.raises(TypeError, match="carries a derivation"):
        Question("?", 5)
