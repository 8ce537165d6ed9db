"""Uploaded CSV files: a valid round trip, and a clear CSVError for every kind of problem."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.data import CSVError, DatasetSpec, build_dataset, csv_sha256, describe, parse_csv
from engine.data.csv_parse import decode_csv_bytes


def test_valid_csv_with_string_labels(fruit_csv):
    X, y, features, classes = parse_csv(fruit_csv, "colour")
    assert features == ("weight", "sweetness")
    assert classes == ("apple", "banana", "pear")
    assert X.dtype == np.float64 and X.shape == (12, 2)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X[:3], [[150.0, 6.5], [120.5, 7.0], [118.0, 9.0]])
    assert [classes[k] for k in y[:4]] == ["apple", "pear", "banana", "apple"]


def test_csv_round_trip_through_build_dataset(fruit_csv):
    spec = DatasetSpec(
        kind="csv", csv_sha256=csv_sha256(fruit_csv), label_column="colour", val_fraction=0.25
    )
    d = build_dataset(DatasetSpec.from_dict(spec.to_dict()), csv_text=fruit_csv)
    assert d.class_names == ("apple", "banana", "pear") and d.n_classes == 3
    assert d.feature_names == ("weight", "sweetness")
    info = describe(d)
    assert info["class_counts_train"] == [3, 3, 3] and info["class_counts_val"] == [1, 1, 1]
    # the original rows come back through the scaler, each with its own label
    X, y, _, _ = parse_csv(fruit_csv, "colour")
    rows = {tuple(r): label for r, label in zip(X.tolist(), y.tolist())}
    back = np.concatenate([d.X_train, d.X_val]) * d.scaler_std + d.scaler_mean
    labels = np.concatenate([d.y_train, d.y_val])
    for r, label in zip(np.round(back, 3).tolist(), labels.tolist()):
        assert rows[tuple(r)] == label
    again = build_dataset(spec, csv_text=fruit_csv.encode("utf-8"))  # bytes are fine too
    np.testing.assert_array_equal(again.X_train, d.X_train)


def test_csv_hash_mismatch_and_missing_text(fruit_csv):
    spec = DatasetSpec(kind="csv", csv_sha256=csv_sha256(fruit_csv), label_column="colour")
    with pytest.raises(CSVError, match="does not match the spec: its sha256 is"):
        build_dataset(spec, csv_text=fruit_csv.replace("150.0", "151.0"))
    with pytest.raises(ValueError, match="kind 'csv' needs csv_text"):
        build_dataset(spec)


def test_csv_sha256_is_the_hash_of_utf8_text():
    assert csv_sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert csv_sha256("é") != csv_sha256("e")
    with pytest.raises(TypeError, match="decoded text"):
        csv_sha256(b"a,b")  # type: ignore[arg-type]


def test_integer_labels_sort_numerically_and_are_canonical():
    text = "x,label\n1,10\n2,2\n3,2.0\n4,10\n5,02\n6,10\n"
    _, y, _, classes = parse_csv(text, "label")
    assert classes == ("2", "10")
    assert y.tolist() == [1, 0, 0, 1, 0, 1]


def test_semicolon_file_with_decimal_commas_is_accepted():
    text = "a;b;class\n1,5;2;x\n-0,25;3,0;y\n4;1e3;x\n2;2;y\n"
    X, y, features, classes = parse_csv(text, "class")
    assert features == ("a", "b") and classes == ("x", "y")
    np.testing.assert_array_equal(X, [[1.5, 2.0], [-0.25, 3.0], [4.0, 1000.0], [2.0, 2.0]])


def test_tabs_bom_crlf_quotes_spaces_and_blank_lines():
    text = (
        '\ufeff"first x"\t x2 \tlabel\r\n'
        '1\t 2\tcat\r\n\r\n3\t4\t"dog"\r\n5\t6\tcat\r\n7\t8\tdog\r\n\r\n'
    )
    X, y, features, classes = parse_csv(text, "label")
    assert features == ("first x", "x2")
    assert classes == ("cat", "dog") and y.tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(X[:, 0], [1, 3, 5, 7])


def test_label_column_may_have_surrounding_spaces(fruit_csv):
    assert parse_csv(fruit_csv, " colour ")[3] == ("apple", "banana", "pear")


GOOD = "a,b,y\n1,2,p\n3,4,q\n5,6,p\n7,8,q\n"

ERROR_CASES = [
    ("empty file", "", "y", ["empty"]),
    ("blank file", "  \n\n \n", "y", ["empty"]),
    ("header only", "a,b,y\n", "y", ["header (row 1)", "no data rows"]),
    ("label missing", GOOD, "label", ["'label' not found", "'a', 'b', 'y'"]),
    ("label case", GOOD, "Y", ["'Y' not found", "did you mean 'y'?"]),
    ("text in numeric", "a,b,y\n1,2,p\n3,abc,q\n5,6,p\n", "y", ["row 3", "column 'b'", "'abc'"]),
    ("empty cell", "a,b,y\n1,2,p\n3,,q\n5,6,p\n", "y", ["row 3", "column 'b'", "empty"]),
    ("nan", "a,b,y\n1,2,p\n3,4,q\nnan,6,p\n", "y", ["row 4", "column 'a'", "'nan'", "finite"]),
    ("inf", "a,b,y\n1,-inf,p\n3,4,q\n", "y", ["row 2", "column 'b'", "'-inf'", "finite"]),
    ("too large", "a,b,y\n1,2,p\n3,1e39,q\n", "y", ["row 3", "column 'b'", "float32"]),
    ("ragged", "a,b,y\n1,2,p\n3,4\n5,6,p\n", "y", ["row 3 has 2 fields", "3 columns"]),
    ("ragged long", GOOD + "1,2,3,p\n", "y", ["row 6 has 4 fields", "header (row 1)"]),
    ("pipe", "a|b|y\n1|2|p\n", "y", ["only one column", "looks like '|'-separated"]),
    ("duplicate", "a,b,a,y\n1,2,3,p\n", "y", ["'a' appears twice", "columns 1 and 3"]),
    ("no name", "a,,y\n1,2,p\n", "y", ["column 2 has no name", "row 1"]),
    ("one class", "a,y\n1,p\n2,p\n3,p\n", "y", ["only one class", "'p'"]),
    ("too few rows", "a,y\n1,p\n2,p\n3,q\n", "y", ["class 'q'", "only 1 row (row 4)", "split"]),
    ("label empty", "a,y\n1,p\n2,\n3,q\n", "y", ["row 3", "label column 'y' is empty"]),
    (
        "continuous label",
        "a,y\n" + "".join(f"{i},{i / 7:.4f}\n" for i in range(150)),
        "y",
        ["150 distinct values", "continuous"],
    ),
    ("nul", "a,y\n1,p\x00\n", "y", ["NUL"]),
    ("replacement char", "a,y\n1,p\n2,caf\ufffd\n", "y", ["row 3", "not UTF-8"]),
    ("blank lines keep row numbers", "a,y\n\n1,p\n\nx,q\n", "y", ["row 5", "'x'"]),
    # a quoted cell spanning two lines is one spreadsheet row: 'p' is in row 3 (line 4)
    ("multi-line quoted cell", 'a,y\n1,"p\nq"\n2,p\n', "y", ["class 'p'", "only 1 row (row 3)"]),
]


@pytest.mark.parametrize(
    ("text", "label", "fragments"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_every_problem_is_a_csv_error_naming_where(text, label, fragments):
    with pytest.raises(CSVError) as info:
        parse_csv(text, label)
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_file_that_is_not_utf8_is_named_as_such():
    latin1 = "a,y\n1,p\n2,café\n".encode("latin-1")
    with pytest.raises(CSVError, match=r"not UTF-8 text: byte 0xe9 in row 3.*CSV UTF-8"):
        parse_csv(latin1, "y")
    with pytest.raises(CSVError, match="UTF-16 encoded, not UTF-8"):
        decode_csv_bytes("a,y\n1,p\n".encode("utf-16"))
    assert decode_csv_bytes("\ufeffa,y\n".encode()) == "a,y\n"


def test_too_few_rows_for_the_split_from_build_dataset_is_a_csv_error():
    text = "a,y\n1,p\n2,p\n3,q\n4,q\n"
    spec = DatasetSpec(kind="csv", csv_sha256=csv_sha256(text), label_column="y")
    d = build_dataset(spec, csv_text=text)  # 2 rows per class is the minimum: 1 + 1
    assert len(d.y_train) == len(d.y_val) == 2


labels_strategy = st.lists(
    st.sampled_from(["cat", "dog", "ému", "a b", "x,y", '"q"']), min_size=4, max_size=30
).filter(lambda ls: len(set(ls)) >= 2 and all(ls.count(v) >= 2 for v in set(ls)))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), labels=labels_strategy)
def test_written_tables_parse_back_exactly(data, labels):
    n = len(labels)
    X = data.draw(
        hnp.arrays(
            np.float64,
            (n, 3),
            elements=st.floats(-1e30, 1e30, allow_nan=False, allow_subnormal=False),
        )
    )

    def quote(s):
        return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"') else s

    lines = ["f1,label,f2,f3"] + [
        f"{r[0]!r},{quote(lab)},{r[1]!r},{r[2]!r}" for r, lab in zip(X.tolist(), labels)
    ]
    Xp, y, features, classes = parse_csv("\n".join(lines), "label")
    np.testing.assert_array_equal(Xp, X)
    assert features == ("f1", "f2", "f3")
    assert classes == tuple(sorted(set(labels)))
    assert [classes[k] for k in y] == labels


def test_csv_columns_reads_the_header_as_parse_csv_does():
    from engine.data import csv_columns

    assert csv_columns("a;b;label\n1,5;2;x\n") == ["a", "b", "label"]
    assert csv_columns(b"\xef\xbb\xbfx,y\n1,2\n") == ["x", "y"]
    with pytest.raises(CSVError, match="appears twice"):
        csv_columns("a,a,label\n1,2,3\n")
    with pytest.raises(CSVError, match="only one column"):
        csv_columns("just_one\n1\n")


@pytest.mark.parametrize("lead", [",,\n", ", ,\n\n", "\t,\n", '"",""\n'])
def test_csv_columns_skips_leading_rows_of_empty_cells_like_parse_csv(lead):
    from engine.data import csv_columns

    text = lead + "a,b,label\n1,2,x\n3,4,y\n1,2,x\n3,4,y\n"
    assert csv_columns(text) == ["a", "b", "label"]
    _, _, features, _ = parse_csv(text, "label")
    assert features == ("a", "b")


def test_csv_columns_of_empty_cells_only_says_the_file_is_empty():
    from engine.data import csv_columns

    with pytest.raises(CSVError, match="empty"):
        csv_columns(",,\n , \n")
