"""Uploaded CSV files: decoding, validation and parsing into numeric features and class labels.

A CSV holds a header row, numeric feature columns and one label column chosen by name. Labels may
be strings or integers; they become 0..C-1 in sorted order (numeric order when every label is an
integer) and the original names are kept. Every problem is a `CSVError` whose message names the
row (1-based, as a spreadsheet shows it: the header is row 1) or the column. The delimiter is
guessed from the header: ',', ';' or tab; with ';' a decimal comma ("1,5") is accepted.
"""

from __future__ import annotations

import csv
import hashlib
import io

import numpy as np

MAX_CLASSES = 100
_DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class CSVError(ValueError):
    """A problem with an uploaded CSV; the message names the row or column and what to fix."""


def csv_sha256(text: str) -> str:
    """Hex sha256 of the text's UTF-8 bytes: an upload's address (DatasetSpec.csv_sha256)."""
    if not isinstance(text, str):
        raise TypeError(f"csv_sha256 needs the decoded text (str); got {type(text).__name__}")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode_csv_bytes(data: bytes) -> str:
    """Decode an uploaded file as UTF-8 (a byte-order mark is dropped), or raise CSVError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CSVError("the file is UTF-16 encoded, not UTF-8: save it as 'CSV UTF-8' and retry")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        row = data[: e.start].count(b"\n") + 1
        raise CSVError(
            f"the file is not UTF-8 text: byte 0x{data[e.start]:02x} in row {row} cannot be "
            "decoded (is it Latin-1 or Windows-1252?); save it as 'CSV UTF-8' and retry"
        ) from None


def _guess_delimiter(header_line: str) -> str:
    counts = [header_line.count(d) for d in _DELIMITERS]
    return _DELIMITERS[int(np.argmax(counts))]  # ties and no delimiter at all -> ','


def _read_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """Non-blank records with their spreadsheet row numbers; cells stripped of blanks."""
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row = 0
    try:
        for row, record in enumerate(reader, start=1):
            cells = [cell.strip() for cell in record]
            if any(cells):
                rows.append((row, cells))
    except csv.Error as e:
        raise CSVError(f"row {row + 1} cannot be read as CSV: {e}") from None
    return rows


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise CSVError("the file contains NUL characters: it is not a UTF-8 text CSV file")
    bad = text.find("\ufffd")
    if bad >= 0:
        row = text.count("\n", 0, bad) + 1
        raise CSVError(
            f"row {row} holds an undecodable character (\ufffd): the file was not UTF-8 "
            "encoded; save it as 'CSV UTF-8' and retry"
        )
    if not text.strip():
        raise CSVError("the file is empty")


def _check_header(header: list[str], header_row: int, delimiter: str) -> None:
    for j, name in enumerate(header, start=1):
        if not name:
            raise CSVError(f"column {j} has no name in the header (row {header_row})")
    seen: dict[str, int] = {}
    for j, name in enumerate(header, start=1):
        if name in seen:
            raise CSVError(
                f"column name {name!r} appears twice in the header (columns {seen[name]} and "
                f"{j}); column names must be unique"
            )
        seen[name] = j
    if len(header) == 1:
        others = [d for d in ("|", ":", " ") if d in header[0]]
        hint = f"; it looks like {others[0]!r}-separated" if others else ""
        raise CSVError(
            f"only one column found in the header ({header[0]!r}){hint}: a CSV needs feature "
            "columns and a label column, separated by commas, semicolons or tabs"
        )


def _label_index(header: list[str], label_column: str) -> int:
    label = label_column.strip()
    if label in header:
        return header.index(label)
    listed = ", ".join(repr(h) for h in header[:30]) + (" ..." if len(header) > 30 else "")
    similar = [h for h in header if h.casefold() == label.casefold()]
    hint = f" (did you mean {similar[0]!r}?)" if similar else ""
    raise CSVError(f"label column {label_column!r} not found{hint}; the columns are: {listed}")


def _cell_value(value: str, row: int, column: str, decimal_comma: bool) -> float:
    """One feature cell as a float, or a CSVError naming its row and column."""
    if not value:
        raise CSVError(
            f"row {row}, column {column!r}: the cell is empty (a missing value); "
            "fill it in or remove the row"
        )
    try:
        return float(value.replace(",", ".") if decimal_comma else value)
    except ValueError:
        raise CSVError(
            f"row {row}, column {column!r}: {value!r} is not a number; feature columns must be "
            "numeric (remove or encode text columns)"
        ) from None


def _parse_features(
    rows: list[tuple[int, list[str]]], columns: list[int], header: list[str], decimal_comma: bool
) -> np.ndarray:
    """X (N, D) float64 from the feature cells; CSVError at the first bad cell."""
    cells = [[record[j] for j in columns] for _, record in rows]
    if decimal_comma:
        cells = [[c.replace(",", ".") for c in r] for r in cells]
    try:
        X = np.array(cells, dtype=str).astype(np.float64)  # fast path
    except ValueError:  # slow path: find the first bad cell, in reading order
        X = np.array(
            [
                [_cell_value(record[j], row, header[j], decimal_comma) for j in columns]
                for row, record in rows
            ],
            dtype=np.float64,
        )
    bad = np.argwhere(~np.isfinite(X) | (np.abs(X) > _FLOAT32_MAX))
    if len(bad):
        i, k = bad[0]
        row, record = rows[i]
        raise CSVError(
            f"row {row}, column {header[columns[k]]!r}: {record[columns[k]]!r} is not a finite "
            "number (NaN, infinity, or too large for float32); fill in a real value"
        )
    return X


def _class_keys(labels: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """Sorted class names and each row's name: numeric order if every label is an integer.

    Integer labels are canonical ("01" and "1.0" are class "1"; "2" sorts before "10").
    """
    try:
        values = [float(s) for s in labels]
    except ValueError:
        values = []
    if values and all(v.is_integer() for v in values):
        ints = [int(v) for v in values]
        return tuple(str(v) for v in sorted(set(ints))), [str(v) for v in ints]
    return tuple(sorted(set(labels))), labels


def _parse_labels(
    rows: list[tuple[int, list[str]]], j: int, label: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    labels = []
    for row, record in rows:
        if not record[j]:
            raise CSVError(f"row {row}: the label column {label!r} is empty")
        labels.append(record[j])
    names, labels = _class_keys(labels)
    if len(names) < 2:
        raise CSVError(
            f"the label column {label!r} has only one class ({names[0]!r}): at least 2 classes "
            "are needed"
        )
    if len(names) > MAX_CLASSES:
        raise CSVError(
            f"the label column {label!r} has {len(names)} distinct values in {len(labels)} rows: "
            f"at most {MAX_CLASSES} classes; is it a continuous target rather than a class?"
        )
    index = {name: k for k, name in enumerate(names)}
    y = np.array([index[s] for s in labels], dtype=np.int64)
    counts = np.bincount(y, minlength=len(names))
    for k in np.flatnonzero(counts < 2):
        row = rows[int(np.flatnonzero(y == k)[0])][0]
        raise CSVError(
            f"class {names[k]!r} of label column {label!r} has only 1 row (row {row}): too few "
            "rows for a train/validation split; each class needs at least 2 rows"
        )
    return y, names


def _text_and_delimiter(text: str | bytes) -> tuple[str, str]:
    """The checked text (decoded, without a BOM) and the delimiter its header row uses."""
    if isinstance(text, bytes):
        text = decode_csv_bytes(text)
    text = text.removeprefix("\ufeff")
    _check_text(text)
    return text, _guess_delimiter(_header_line(text))


def _header_line(text: str) -> str:
    """The first line holding more than separators, quotes and blanks (rows like ``,,`` are
    skipped as the reader skips them); the empty string if there is none."""
    for line in text.splitlines():
        if line.strip(" \t,;\"'"):
            return line
    return ""


def csv_columns(text: str | bytes) -> list[str]:
    """The header's column names, read as ``parse_csv`` reads them (so a page can offer them).

    Raises CSVError for text that is not UTF-8, an empty file, or a header that is not valid
    (a nameless or repeated column, a single column).
    """
    text, delimiter = _text_and_delimiter(text)
    header_row, header = _first_row(text, delimiter)
    _check_header(header, header_row, delimiter)
    return header


def _first_row(text: str, delimiter: str) -> tuple[int, list[str]]:
    """The first record holding a value (the header ``parse_csv`` uses), read lazily.

    Lines of empty cells only (``,,``) are skipped, as ``_read_rows`` skips them.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row = 0
    try:
        for row, record in enumerate(reader, start=1):
            cells = [cell.strip() for cell in record]
            if any(cells):
                return row, cells
    except csv.Error as e:
        raise CSVError(f"row {row + 1} cannot be read as CSV: {e}") from None
    raise CSVError("the file is empty (no cell holds a value)")


def parse_csv(
    text: str | bytes, label_column: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Parse an uploaded CSV: X (N, D) float64, y (N,) int64 in 0..C-1, feature and class names.

    `text` is the decoded file (bytes are decoded as UTF-8 first). Blank lines are skipped. Raises
    CSVError naming the row (header = row 1) or column of the first problem found.
    """
    text, delimiter = _text_and_delimiter(text)
    rows = _read_rows(text, delimiter)
    if not rows:
        raise CSVError("the file is empty (no cell holds a value)")
    (header_row, header), data = rows[0], rows[1:]
    _check_header(header, header_row, delimiter)
    j_label = _label_index(header, label_column)
    if not data:
        raise CSVError(f"the file has a header (row {header_row}) but no data rows")
    for row, record in data:
        if len(record) != len(header):
            raise CSVError(
                f"row {row} has {len(record)} fields but the header (row {header_row}) has "
                f"{len(header)} columns; separator: {_DELIMITER_NAMES[delimiter]}"
            )
    columns = [j for j in range(len(header)) if j != j_label]
    X = _parse_features(data, columns, header, decimal_comma=delimiter == ";")
    y, class_names = _parse_labels(data, j_label, header[j_label])
    return X, y, tuple(header[j] for j in columns), class_names
