"""Search designer: rows, previews on each parameter's scale, the engine's validation messages
before launch, and launch -> the live page."""

from __future__ import annotations

import json

from engine.storage import studies as store
from tests.app.conftest import no_exception
from tests.app.fakes import fake_study


def launch_button(at):
    return at.button(key="designer.launch")


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_defaults_are_launchable_with_previews(open_page):
    at = open_page("designer")
    no_exception(at)
    assert errors(at) == [] and not launch_button(at).disabled
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 5  # the default space searches five knobs
    lr = next(s for s in specs if "learning_rate on a log scale" in json.dumps(s))
    assert lr["layout"]["xaxis"]["type"] == "log" and lr["layout"]["xaxis2"]["type"] == "linear"
    beta = next(s for s in specs if "1 - beta1" in json.dumps(s))
    assert beta["layout"]["xaxis"]["type"] == "log"
    assert beta["layout"]["xaxis"]["autorange"] == "reversed"


def test_low_above_high_is_refused_before_launch(open_page):
    at = open_page("designer")
    at.text_input(key="hp.l2.low").set_value("0.5").run()
    no_exception(at)
    assert errors(at) == ["l2: low must be <= high, got low=0.5, high=0.1"]
    assert launch_button(at).disabled
    assert "Before launching" in at.warning[-1].value
    assert "Start over" in at.warning[-1].value  # the way out it names
    at.button(key="designer.reset").click().run()
    assert errors(at) == [] and not launch_button(at).disabled


def test_log_bound_at_or_below_zero_is_refused(open_page):
    at = open_page("designer")
    at.text_input(key="hp.learning_rate.low").set_value("0").run()
    assert errors(at) == ["learning_rate: log scale needs low > 0, got low=0.0, high=1.0"]
    assert launch_button(at).disabled
    at.text_input(key="hp.learning_rate.low").set_value("-1e-3").run()
    assert "log scale needs low > 0" in errors(at)[0]
    at.text_input(key="hp.learning_rate.low").set_value("1e-4").run()
    assert errors(at) == [] and not launch_button(at).disabled


def test_text_that_is_not_a_number_and_out_of_domain_values(open_page):
    at = open_page("designer")
    at.text_input(key="hp.learning_rate.high").set_value("lots").run()
    assert errors(at) == ["learning_rate high: 'lots' is not a number"]
    at.text_input(key="hp.learning_rate.high").set_value("1").run()
    at.toggle(key="hp.dropout.search").set_value(True).run()
    at.text_input(key="hp.dropout.high").set_value("1.5").run()
    assert "dropout must be in [0, 1)" in errors(at)[0]


def test_linear_range_over_two_decades_warns(open_page):
    at = open_page("designer")
    at.selectbox(key="hp.learning_rate.scale").set_value("linear").run()
    no_exception(at)
    warning = at.warning[0].value
    assert "learning_rate: 1e-4..1 spans 4.0 decades on a linear scale" in warning
    assert "Use the log scale" in warning
    assert not launch_button(at).disabled  # a warning, not an error


def test_grid_shows_its_size_and_schedule_errors_come_from_the_engine(open_page):
    at = open_page("designer")
    at.segmented_control(key="designer.sampler").set_value("grid").run()
    no_exception(at)
    assert at.metric[0].value == "162"  # 3 x 3 x 3 x 2 (batch norm) x 3
    count = next(c.value for c in at.caption if c.value.startswith("162 = "))
    assert "2 batch_norm (every option)" in count
    at.radio(key="designer.schedule").set_value("successive_halving").run()
    at.number_input(key="designer.epochs").set_value(3).run()
    at.number_input(key="designer.min_epochs").set_value(5).run()
    assert any("max_epochs must be >= min_epochs" in e for e in errors(at))
    assert launch_button(at).disabled


def test_dask_needs_an_address(open_page):
    at = open_page("designer")
    at.radio(key="designer.backend").set_value("dask").run()
    assert launch_button(at).disabled
    at.text_input(key="designer.address").set_value("tcp://127.0.0.1:8786").run()
    assert not launch_button(at).disabled


def test_coarse_to_fine_shows_the_box_of_the_parent(open_page, conn):
    at = open_page("designer")
    at.segmented_control(key="designer.sampler").set_value("coarse_to_fine").run()
    assert launch_button(at).disabled  # no parent yet
    parent = fake_study(conn, 20, 3, name="parent")
    at = open_page("designer")
    at.segmented_control(key="designer.sampler").set_value("coarse_to_fine").run()
    no_exception(at)
    assert errors(at) == [] and not launch_button(at).disabled
    box = at.dataframe[0].value
    assert list(box["parameter"]) == list(store.get_study(conn, parent)["space"]["params"])
    assert len(at.get("plotly_chart")) == 5


def test_launch_creates_the_study_and_opens_it(open_page, conn):
    at = open_page("designer")
    at.text_input(key="designer.name").set_value("from the designer").run()
    at.number_input(key="designer.n_trials").set_value(3).run()
    at.number_input(key="designer.epochs").set_value(2).run()
    launch_button(at).click().run()
    no_exception(at)
    (study,) = store.list_studies(conn)
    assert study["name"] == "from the designer" and study["n_trials"] == 3
    assert study["scheduler"] == {"kind": "full_budget", "n_epochs": 2}
    assert at.query_params["study"] == str(study["id"])
    assert at.selectbox[0].label == "Study"  # the live study page


def test_the_objective_and_an_epoch_cap_reach_the_study(open_page, conn):
    at = open_page("designer")
    at.selectbox(key="designer.objective").set_value("val_loss").run()
    at.number_input(key="designer.epoch_budget").set_value(500).run()
    launch_button(at).click().run()
    no_exception(at)
    (study,) = store.list_studies(conn)
    assert study["objective"] == {"metric": "val_loss"} and study["epoch_budget"] == 500
    assert any("minimise val_loss" in c.value for c in at.caption)  # said on the live page


def test_an_empty_choice_names_its_knob(open_page):
    """QA: clearing every option of batch_norm said 'a Choice needs at least one option'."""
    at = open_page("designer")
    at.multiselect(key="hp.batch_norm.options").set_value([]).run()
    no_exception(at)
    assert errors(at) == ["batch_norm: pick at least one option, or turn search off to fix "
                          "one value"]
    assert launch_button(at).disabled


def test_zero_trials_points_or_epochs_are_named_not_silently_replaced(open_page):
    """QA: typing 0 in a box whose minimum was 1 left a red 0 on screen while the page kept
    the old value, so Launch started 20 trials."""
    at = open_page("designer")
    at.number_input(key="designer.n_trials").set_value(0).run()
    no_exception(at)
    assert errors(at) == ["Trials must be at least 1, got 0"]
    assert launch_button(at).disabled
    at.number_input(key="designer.n_trials").set_value(3).run()
    at.number_input(key="designer.epochs").set_value(0).run()
    assert errors(at) == ["Epochs per trial must be at least 1, got 0"]
    at.number_input(key="designer.epochs").set_value(5).run()
    at.segmented_control(key="designer.sampler").set_value("grid").run()
    at.number_input(key="designer.points").set_value(0).run()
    no_exception(at)
    assert errors(at) == ["Points per axis must be at least 1, got 0"]
    assert launch_button(at).disabled


def test_an_unreachable_dask_scheduler_is_refused_before_anything_is_created(open_page, conn):
    """QA: tcp://127.0.0.1:1 became a study that failed ten seconds after launch."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    at = open_page("designer")
    at.radio(key="designer.backend").set_value("dask").run()
    at.text_input(key="designer.address").set_value(f"tcp://127.0.0.1:{port}").run()
    launch_button(at).click().run()
    no_exception(at)
    assert store.list_studies(conn) == []
    (message,) = errors(at)
    assert f"nothing answers at tcp://127.0.0.1:{port}" in message
    assert at.text_input(key="designer.address").value == f"tcp://127.0.0.1:{port}"
    at.text_input(key="designer.address").set_value("127.0.0.1").run()
    launch_button(at).click().run()
    assert "must look like tcp://127.0.0.1:8786" in errors(at)[0]
    assert store.list_studies(conn) == []


def test_knobs_valid_alone_but_not_together_are_a_plain_message(open_page):
    """QA: searching decay (exponential possible) with decay_rate fixed at 0 read 'Could not
    check the search space: ...', as if the page had failed."""
    at = open_page("designer")
    at.toggle(key="hp.decay.search").set_value(True).run()
    no_exception(at)
    assert errors(at) == ["decay_rate must be in (0, 1] when decay can be 'exponential', "
                          "got value=0.0"]
    assert launch_button(at).disabled
    assert "decay_rate must be in (0, 1]" in at.warning[-1].value
    at.toggle(key="hp.decay_rate.search").set_value(True).run()
    assert errors(at) == [] and not launch_button(at).disabled


def stacking_note(at) -> str:
    return next(c.value for c in at.caption if ":material/stacks:" in c.value)


def test_the_designer_says_when_the_study_will_run_stacked(open_page):
    at = open_page("designer")
    no_exception(at)
    assert "Runs stacked: All trials (batch size × widest hidden layer ≤ 8,192)" in (
        stacking_note(at))
    at.toggle(key="hp.hidden_units.search").set_value(False).run()
    at.text_input(key="hp.hidden_units.value").set_value("256").run()
    at.text_input(key="hp.batch_size.value").set_value("128").run()
    assert "Every trial trains alone" in stacking_note(at)
    assert "128 × 256 = 32,768" in stacking_note(at)


def test_numbers_out_of_range_name_the_field_limit_and_value_and_disable_launch(open_page, conn):
    """QA: trials 100000 or workers 0 only got a red outline while Launch stayed enabled and
    silently used the last valid value."""
    at = open_page("designer")
    at.number_input(key="designer.n_trials").set_value(100_001).run()
    no_exception(at)
    assert errors(at) == ["Trials must be at most 100,000, got 100,001"]
    assert at.number_input(key="designer.n_trials").value == 100_001  # what is shown is used
    assert launch_button(at).disabled
    assert "Trials must be at most 100,000, got 100,001" in at.warning[-1].value
    at.number_input(key="designer.n_trials").set_value(3).run()
    at.number_input(key="designer.workers").set_value(0).run()
    assert errors(at) == ["Workers must be at least 1, got 0"] and launch_button(at).disabled
    at.number_input(key="designer.workers").set_value(5000).run()
    assert errors(at) == ["Workers must be at most 1,024, got 5,000"]
    assert store.list_studies(conn) == []
    at.number_input(key="designer.workers").set_value(1).run()
    at.number_input(key="designer.seed").set_value(2**32).run()
    assert errors(at) == ["Seed must be at most 4,294,967,295, got 4,294,967,296"]
    at.number_input(key="designer.seed").set_value(7).run()
    at.number_input(key="designer.epoch_budget").set_value(-5).run()
    assert errors(at) == ["Epochs in all must be at least 0, got -5"]
    at.number_input(key="designer.epoch_budget").set_value(0).run()
    assert errors(at) == [] and not launch_button(at).disabled
    launch_button(at).click().run()
    (study,) = store.list_studies(conn)
    assert (study["n_trials"], study["workers"], study["seed"]) == (3, 1, 7)


def test_one_bad_knob_keeps_the_other_knobs_previews(open_page):
    """QA: one row with a typo hid the preview of every other knob."""
    at = open_page("designer")
    at.text_input(key="hp.l2.low").set_value("abc").run()
    no_exception(at)
    assert errors(at) == ["l2 low: 'abc' is not a number"] and launch_button(at).disabled
    specs = [json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]
    assert len(specs) == 4  # the five searched knobs but l2
    assert not any("l2 on its" in s for s in specs)
    assert any("learning_rate on a log scale" in s for s in specs)
    assert "No preview until this row is fixed." in [c.value for c in at.caption]
    # two bad rows, and a count out of range too: the valid knobs still show where they land
    at.text_input(key="hp.learning_rate.high").set_value("-1").run()
    at.number_input(key="designer.n_trials").set_value(0).run()
    assert len(at.get("plotly_chart")) == 3 and len(errors(at)) == 3


def test_a_refresh_or_a_restart_keeps_the_design_and_the_dataset(open_page, conn):
    """QA: a browser refresh lost the designer's inputs and the dataset chosen for it."""
    import streamlit as st

    data = open_page("data")
    data.selectbox(key="data.kind").set_value("digits").run()
    data.button(key="data.use_builtin").click().run()
    no_exception(data)
    at = open_page("designer")
    assert any("digits (8x8 images)" in m.value for m in at.markdown)
    at.text_input(key="designer.name").set_value("kept across refreshes").run()
    at.segmented_control(key="designer.sampler").set_value("quasi_random").run()
    at.selectbox(key="designer.qmc").set_value("lhs").run()
    at.number_input(key="designer.n_trials").set_value(100_001).run()  # kept, and still refused
    at.text_input(key="hp.l2.low").set_value("1e-5").run()
    at.toggle(key="hp.dropout.search").set_value(True).run()
    at.multiselect(key="hp.batch_norm.options").set_value([True]).run()
    at.radio(key="designer.schedule").set_value("successive_halving").run()
    no_exception(at)

    st.cache_resource.clear()  # a server restart: new connection pool, new browser session
    again = open_page("designer")
    no_exception(again)
    assert again.text_input(key="designer.name").value == "kept across refreshes"
    assert again.segmented_control(key="designer.sampler").value == "quasi_random"
    assert again.selectbox(key="designer.qmc").value == "lhs"
    assert again.number_input(key="designer.n_trials").value == 100_001
    assert "Trials must be at most 100,000, got 100,001" in errors(again)
    assert launch_button(again).disabled
    assert again.text_input(key="hp.l2.low").value == "1e-5"
    assert again.toggle(key="hp.dropout.search").value is True
    assert again.multiselect(key="hp.batch_norm.options").value == [True]
    assert again.radio(key="designer.schedule").value == "successive_halving"
    assert any("digits (8x8 images)" in m.value for m in again.markdown)

    again.button(key="designer.reset").click().run()  # start over: the defaults again
    no_exception(again)
    assert again.text_input(key="designer.name").value == ""
    assert again.number_input(key="designer.n_trials").value == 20
    fresh = open_page("designer")
    assert fresh.number_input(key="designer.n_trials").value == 20
    assert any("digits (8x8 images)" in m.value for m in fresh.markdown)  # data stays


def test_a_damaged_draft_is_left_out_value_by_value(open_page, conn):
    from engine.storage.drafts import save_draft

    save_draft(conn, "designer", {
        "designer.sampler": "no such sampler", "designer.n_trials": "lots",
        "designer.shrink": 7.0, "hp.activation.options": ["relu", "swish"],
        "hp.l2.scale": "cubic", "hp.nope.low": "1", "designer.name": "still fine",
        "dataset_spec": {"kind": "csv", "csv_sha256": "0" * 64, "label_column": "y"},
        "designer.epochs": 7,
    })
    at = open_page("designer")
    no_exception(at)
    assert at.segmented_control(key="designer.sampler").value == "random"
    assert at.number_input(key="designer.n_trials").value == 20
    assert at.text_input(key="designer.name").value == "still fine"
    assert at.number_input(key="designer.epochs").value == 7
    assert errors(at) == [] and not launch_button(at).disabled
    assert any("moons" in m.value.lower() for m in at.markdown)  # the missing upload: default


def test_messages_use_the_menus_names_for_scales(open_page):
    """The scale menu says "1-log (β)": a refusal says it too, never "one_minus_log"."""
    at = open_page("designer")
    at.text_input(key="hp.beta1.high").set_value("1").run()
    no_exception(at)
    message = errors(at)[0]
    assert message.startswith("beta1: 1-log (β) scale needs 0 <= low <= high < 1")
    assert "one_minus_log" not in message
    assert launch_button(at).disabled


def test_two_tabs_keep_a_draft_each_and_a_refresh_finds_its_own(open_page, conn):
    """QA: two browser tabs shared one designer draft, the last change won. Each tab now has
    its own, named by a key in the designer's URL; a new tab starts from the newest one."""
    from engine.storage.drafts import save_draft

    save_draft(conn, "designer", {"designer.name": "from before drafts were per tab"})
    first, second = open_page("designer"), open_page("designer")
    for at in (first, second):  # the old single draft still opens, in both
        no_exception(at)
        assert at.text_input(key="designer.name").value == "from before drafts were per tab"
    keys = first.query_params["draft"], second.query_params["draft"]
    assert keys[0] != keys[1]
    first.text_input(key="designer.name").set_value("tab one").run()
    second.text_input(key="designer.name").set_value("tab two").run()
    first.number_input(key="designer.n_trials").set_value(7).run()  # tab one changed last
    for key, name, n_trials in [(keys[0], "tab one", 7), (keys[1], "tab two", 20)]:
        again = open_page("designer", draft=key)  # a refresh of that tab
        no_exception(again)
        assert again.query_params["draft"] == key
        assert again.text_input(key="designer.name").value == name
        assert again.number_input(key="designer.n_trials").value == n_trials
    new = open_page("designer")  # a new tab: a copy of the newest, then its own
    assert new.text_input(key="designer.name").value == "tab one"
    assert new.query_params["draft"] not in keys
    new.text_input(key="designer.name").set_value("tab three").run()
    assert open_page("designer", draft=keys[0]).text_input(key="designer.name").value == "tab one"
    odd = open_page("designer", draft="../../etc")  # not a key's shape: a new key instead
    assert odd.query_params["draft"] != "../../etc"
