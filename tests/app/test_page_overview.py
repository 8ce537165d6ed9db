"""Overview: the first page a person sees: studies and sessions with their state, the demo."""

from __future__ import annotations

import re

from app.presets import demo_study, grid_vs_random
from engine.storage import studies as store
from engine.study.planning import plan_trials
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study


def test_first_visit_offers_the_demo(open_page):
    at = open_page()
    no_exception(at)
    assert at.title[0].value == "Panda & Caviar"
    assert at.button(key="overview.demo").label == "▶ Run the demo study"
    assert any("No study yet" in c.value for c in at.caption)
    assert any("Nothing is running" in c.value for c in at.sidebar.caption)


def test_studies_are_listed_with_their_state(open_page, conn):
    done = fake_study(conn, 4, 2, name="finished one")
    lost = fake_study(conn, 4, 2, name="lost runner", status="running", finished=1)
    at = open_page()
    no_exception(at)
    text = [m.value for m in at.markdown]
    assert f"**#{done} finished one**" in text and f"**#{lost} lost runner**" in text
    assert "✓ done" in text and "⚠ interrupted" in text
    assert at.button(key=f"overview.resume.{lost}")
    at.button(key=f"overview.open.{done}").click().run()
    assert at.selectbox[0].label == "Study" and at.query_params["study"] == str(done)


def test_demo_button_starts_a_study_and_opens_it(open_page, conn):
    at = open_page()
    at.button(key="overview.demo").click().run()
    no_exception(at)
    (study,) = store.list_studies(conn)
    assert study["name"].startswith("Demo") and study["workers"] == 2
    assert study["n_trials"] == demo_study()["n_trials"]
    assert store.get_study(conn, study["id"])["runner"]["pid"] > 0  # a runner was spawned
    assert at.query_params["study"] == str(study["id"])


def test_presets_pass_the_engines_checks():
    demo = demo_study()
    space, scheduler, trials = plan_trials(demo["space"], demo["sampler"], demo["scheduler"],
                                           demo["n_trials"], demo["seed"], 2, 2)
    assert len(trials) == demo["n_trials"] and space["params"]["learning_rate"]["scale"] == "log"
    grid, random = grid_vs_random()
    for preset in (grid, random):
        _, _, trials = plan_trials(preset["space"], preset["sampler"], preset["scheduler"],
                                   preset["n_trials"], 0, 2, 3)
        assert len(trials) == 9


EVIL = "![t](http://127.0.0.1:9/x) **big** :red[x]"


def test_user_text_is_shown_as_text_not_markdown(open_page, conn):
    from app.common import plain

    evil = fake_study(conn, 2, 1, name=EVIL, status="failed", finished=2)
    store.set_study_status(conn, evil, "failed", f"cell {EVIL} broke it")
    at = open_page()
    no_exception(at)
    bodies = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert f"**#{evil} {plain(EVIL)}**" in bodies
    assert not any("![t](" in b or "**big**" in b for b in bodies)
    at = open_page("studies", study=str(evil))
    no_exception(at)
    shown = [m.value for m in at.markdown] + [e.value for e in at.error]
    assert any(plain(EVIL) in s for s in shown)
    assert not any("![t](" in s or ":red[" in s for s in shown)


def test_plain_escapes_every_markdown_mark():
    from app.common import plain

    assert plain("![t](http://h/x)") == r"!\[t](http\://h/x)"
    assert plain("# a_b *c*\n_d_ `e`") == r"\# a_b \*c\* \_d\_ \`e\`"
    assert plain("moons 400, seed=0: 'x'") == "moons 400, seed=0: 'x'"


def test_plain_breaks_bare_url_autolinks():
    from app.common import plain

    text = "see http://evil.example/x, HTTPS://a.b and www.evil.example now"
    shown = plain(text)
    assert "http://" not in shown.lower() and "https://" not in shown.lower()
    assert "www." not in shown.lower()
    assert re.sub(r"\\(.)", r"\1", shown) == text  # the escapes show the same characters
