"""The Compare page's second one-click test: random vs zoom vs gp at an equal budget."""

from __future__ import annotations

from app.common import TEXT_AND_BUTTON, friendly_errors, get_conn, set_query
from app.presets import random_vs_learning
from engine import study as studies


def launch_random_vs_learning() -> None:
    with friendly_errors("launch random vs zoom vs gp"):
        conn = get_conn()  # a callback may run on another thread than the last script run
        ids = [studies.new_study(conn, **options) for options in random_vs_learning()]
        for study_id in ids:
            studies.start_study(conn, study_id)
        set_query(studies=ids)


def learning_box(box) -> None:
    """A row in ``box`` (the page's container): the sentence and the button."""
    left, right = box.columns(TEXT_AND_BUTTON, vertical_alignment="center")
    left.markdown("**Random vs zoom vs Bayesian at equal budget.** Three searches of 24 trials "
                  "each over four knobs: random search, a zoom that narrows its box round by "
                  "round, and a Gaussian process that models the score. Each learning search "
                  "starts with the same 8 evenly spread trials.")
    right.button("Run random vs zoom vs GP", icon=":material/insights:", key="compare.rzg",
                 on_click=launch_random_vs_learning, width="stretch")
