"""Messages in the menus' words: internal identifiers become the labels a person picked."""

from __future__ import annotations

from app.common import explain
from app.labels import SCALE_LABELS, menu_words
from engine.search import Float, SpaceError


def test_internal_names_become_their_menu_labels():
    assert menu_words("one_minus_log scale needs 0 <= low") == "1-log (β) scale needs 0 <= low"
    assert (menu_words("n_epochs cannot be searched with successive_halving or pbt")
            == "n_epochs cannot be searched with Successive halving (ASHA) or pbt")
    assert menu_words("scale='one_minus_log'") == "scale='1-log (β)'"


def test_ordinary_words_and_longer_identifiers_are_left_alone():
    text = "log scale needs low > 0; random search; my_one_minus_log_x; learning_rate"
    assert menu_words(text) == text


def test_an_engine_error_reads_in_menu_words():
    try:
        Float(0.5, 1.0, "one_minus_log")
    except SpaceError as err:
        text = explain(err)
    assert text.startswith(SCALE_LABELS["one_minus_log"] + " scale needs")
    assert "one_minus_log" not in text
