"""Data page: built-in previews, and the CSV path (checked by the engine, stored by hash)."""

from __future__ import annotations

import pytest

from app.datasets import check_and_store, guess_label_column, read_upload
from engine.data import CSVError
from engine.storage.blobs import get_upload, list_uploads
from tests.app.conftest import no_exception

GOOD = "x1,x2,label\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(20))


def test_builtin_moons_preview_then_digits(open_page):
    at = open_page("data")
    no_exception(at)
    assert not at.error
    assert [m.label for m in at.metric] == ["Training examples", "Validation examples",
                                            "Features", "Classes"]
    assert at.metric[0].value == "320" and at.metric[3].value == "2"
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # scatter + class counts
    at.selectbox(key="data.kind").set_value("digits").run()
    no_exception(at)
    assert [m.value for m in at.metric] == ["1,438", "359", "64", "10"]
    assert '"heatmap"' in at.get("plotly_chart")[0].proto.spec
    at.button(key="data.use_builtin").click().run()
    assert at.session_state["dataset_spec"]["kind"] == "digits"
    assert "digits" in at.info[0].value


def test_builtin_controls_follow_the_kind(open_page):
    at = open_page("data")
    at.selectbox(key="data.kind").set_value("spirals").run()
    at.slider(key="data.n_classes").set_value(4).run()
    no_exception(at)
    assert at.metric[3].value == "4"


def test_read_upload_lists_columns_and_guesses_the_label():
    text, columns = read_upload(GOOD.encode())
    assert columns == ["x1", "x2", "label"] and text == GOOD
    assert guess_label_column(columns) == "label"
    assert guess_label_column(["a", "b", "c"]) == "c"
    _, columns = read_upload(b"\xef\xbb\xbfa;b;Class\n1;2;x\n")
    assert columns == ["a", "b", "Class"] and guess_label_column(columns) == "Class"


@pytest.mark.parametrize("columns, label", [
    (["x", "y", "label"], "label"), (["y", "target", "x"], "target"),
    (["a", "Y", "b"], "Y"), (["class", "label"], "label"),
])
def test_guess_label_column_prefers_the_likeliest_name_not_the_first_match(columns, label):
    assert guess_label_column(columns) == label


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\n\n", "empty"),
    (b"only_one_column\n1\n", "only one column"),
    ("x,y\n1,caf\xe9\n".encode("latin-1"), "not UTF-8"),
])
def test_read_upload_rejects_unusable_files(data, message):
    with pytest.raises(CSVError, match=message):
        read_upload(data)


@pytest.mark.parametrize("text, label, message", [
    ("x1,x2,label\n1,2,a\n3,abc,b\n4,5,a\n6,7,b\n", "label", "row 3, column 'x2'"),
    ("x1,x2,label\n1,2,a\n3,4\n", "label", "row 3 has 2 fields"),
    ("x1,x2,label\n1,2,a\n3,4,a\n", "label", "only one class"),
    (GOOD, "lbl", "label column 'lbl' not found"),
])
def test_malformed_csv_is_named_and_not_stored(conn, text, label, message):
    with pytest.raises(CSVError, match=message):
        check_and_store(conn, "bad.csv", text, label)
    assert list_uploads(conn) == []


def test_good_csv_is_stored_by_hash(conn):
    spec, summary = check_and_store(conn, "good.csv", GOOD, "label")
    assert spec["kind"] == "csv" and spec["label_column"] == "label"
    assert get_upload(conn, spec["csv_sha256"]) == GOOD
    assert summary["n_features"] == 2 and summary["class_names"] == ["a", "b"]
    again, _ = check_and_store(conn, "good.csv", GOOD, "label")
    assert again == spec and len(list_uploads(conn)) == 1


def test_earlier_upload_can_be_reused(open_page, conn):
    check_and_store(conn, "good.csv", GOOD, "label")
    at = open_page("data")
    at.segmented_control(key="data.source").set_value("Upload a CSV").run()
    no_exception(at)
    at.button[0].click().run()
    no_exception(at)
    assert at.session_state["dataset_spec"]["label_column"] == "label"
    at.text_input[0].set_value("x2")  # then the text column 'label' would be a feature
    at.button[0].click().run()
    assert "row 2, column 'label': 'a' is not a number" in at.error[0].value
    assert at.session_state["dataset_spec"]["label_column"] == "label"  # unchanged


def test_banner_names_the_dataset_chosen_in_this_very_run(open_page, conn):
    """QA: after 'Use this file' (or 'Check and use this CSV') the banner on top still named
    the previous dataset while the toast announced the new one."""
    check_and_store(conn, "flowers.csv", GOOD, "label")
    at = open_page("data")
    assert "moons" in at.info[0].value
    at.segmented_control(key="data.source").set_value("Upload a CSV").run()
    at.button[-1].click().run()  # the earlier-uploads form: 'Use this file'
    no_exception(at)
    assert not at.error
    assert at.session_state["dataset_spec"]["name"] == "flowers.csv"
    assert "flowers.csv" in at.info[0].value
