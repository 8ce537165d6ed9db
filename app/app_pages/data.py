"""Data page: pick a built-in dataset (with a preview) or upload a CSV, then use it in a search.

The chosen dataset is UI state (``st.session_state["dataset_spec"]``, a DatasetSpec dict) that the
search designer starts from; an uploaded file itself is stored in SQLite by its hash.
"""

import numpy as np
import streamlit as st

from app.charts.data import class_counts, digits_grid, scatter_2d
from app.common import PAGES, friendly_errors, get_conn, plain
from app.datasets import (
    DEFAULT_SPEC,
    check_and_store,
    guess_label_column,
    load_dataset,
    read_upload,
    spec_label,
)
from engine.data import BUILTIN_KINDS, TOY_KINDS, CSVError, describe, original_coordinates
from engine.data.digits import load_digit_images
from engine.storage.blobs import list_uploads

KIND_LABELS = {
    "moons": "Two moons (2-D)", "circles": "Circles (2-D)", "spirals": "Spirals (2-D)",
    "blobs": "Blobs (2-D)", "xor": "XOR (2-D)", "digits": "Handwritten digits (8x8 images)",
    "synthetic": "Synthetic (many features, for speed tests)",
}
MULTICLASS = ("spirals", "blobs", "synthetic")

st.title("Data")
st.caption("Choose what the networks learn. Built-in sets are generated offline and seeded; "
           "a CSV upload needs numeric feature columns and one label column.")
conn = get_conn()
# Filled in at the end of the script: a CSV checked or an earlier upload used further down
# changes the choice during this very run, and the banner must say so.
banner = st.empty()


def use(spec: dict) -> None:
    st.session_state["dataset_spec"] = spec
    st.toast(f"Dataset set to {plain(spec_label(spec))}")


def show_summary(summary: dict) -> None:
    # two rows of two: four in a row, in the preview's two thirds of the page, cut "Training
    # ex…" and "Validation …" at 1,024 px (80 px each)
    cols = [*st.columns(2), *st.columns(2)]
    cols[0].metric("Training examples", f"{summary['n_train']:,}")
    cols[1].metric("Validation examples", f"{summary['n_val']:,}")
    cols[2].metric("Features", summary["n_features"])
    cols[3].metric("Classes", summary["n_classes"])
    st.plotly_chart(class_counts(summary["class_names"], summary["class_counts_train"],
                                 summary["class_counts_val"]), key="class_counts")


source = st.segmented_control("Source", ["Built-in", "Upload a CSV"], default="Built-in",
                              key="data.source", persist_state="session", required=True)

if source == "Built-in":
    left, right = st.columns([1, 2])
    with left:
        kind = st.selectbox("Dataset", BUILTIN_KINDS, format_func=KIND_LABELS.get,
                            key="data.kind", persist_state="session")
        spec = {"kind": kind, "seed": st.number_input("Seed", 0, 10**6, 0, key="data.seed",
                                                       persist_state="session")}
        if kind != "digits":
            spec["n_samples"] = st.slider("Examples", 50, 5000, 400, step=50,
                                          key="data.n_samples", persist_state="session")
            spec["noise"] = st.slider("Noise", 0.0, 1.0, 0.25, step=0.05, key="data.noise",
                                      persist_state="session")
        if kind in MULTICLASS:
            spec["n_classes"] = st.slider("Classes", 2, 10, 3, key="data.n_classes",
                                          persist_state="session")
        if kind == "synthetic":
            spec["n_features"] = st.slider("Features", 2, 200, 20, key="data.n_features",
                                           persist_state="session")
        spec["val_fraction"] = st.slider("Validation fraction", 0.05, 0.5, 0.2, step=0.05,
                                         key="data.val_fraction", persist_state="session")
        st.button("Use this dataset", type="primary", on_click=use, args=(spec,),
                  key="data.use_builtin")
        # "Go to the search designer" was cut in this third of the page at 1,024 px
        st.page_link(PAGES["designer"], label="Search designer", icon=":material/tune:")
    with right, friendly_errors("build the dataset"):
        dataset = load_dataset(conn, spec)
        summary = describe(dataset)
        if kind in TOY_KINDS:
            points = original_coordinates(dataset, dataset.X_train)
            st.plotly_chart(scatter_2d(points, dataset.y_train, dataset.class_names),
                            key="preview_scatter")
        elif kind == "digits":
            images, labels = load_digit_images()
            pick = np.random.default_rng(spec["seed"]).choice(len(images), 40, replace=False)
            st.plotly_chart(digits_grid(images[pick], labels[pick]), key="preview_digits")
            st.caption("40 random digits of the 1,797 (8x8 pixels, values 0..16).")
        show_summary(summary)
else:
    upload = st.file_uploader("CSV file (UTF-8, header row, comma/semicolon/tab separated)",
                              type=["csv", "txt"], key="data.upload")
    if upload is not None:
        with friendly_errors("read the file"):
            text, columns = read_upload(upload.getvalue())
            with st.form("csv_form"):
                label = st.selectbox("Label column", columns,
                                     index=columns.index(guess_label_column(columns)))
                saved = st.form_submit_button("Check and use this CSV", type="primary")
            if saved:
                try:
                    spec, summary = check_and_store(conn, upload.name, text, label)
                except CSVError as err:
                    st.error(f"This CSV cannot be used: {plain(err)}", icon=":material/error:")
                else:
                    use(spec)
                    st.success(f"Stored **{plain(upload.name)}** ({len(text):,} characters); the "
                               "search designer will use it.")
                    show_summary(summary)
    uploads = list_uploads(conn)
    if uploads:
        st.subheader("Earlier uploads")
        with st.form("earlier_upload"):
            chosen = st.selectbox("File", uploads, format_func=lambda u: f"{u['name']} "
                                  f"({u['n_bytes']:,} bytes, {u['sha256'][:8]})")
            label = st.text_input("Label column", value="label")
            again = st.form_submit_button("Use this file")
        if again:
            with friendly_errors("use the earlier upload"):
                spec = {"kind": "csv", "csv_sha256": chosen["sha256"], "label_column": label,
                        "name": chosen["name"]}
                show_summary(describe(load_dataset(conn, spec)))
                use(spec)

current = st.session_state.get("dataset_spec", DEFAULT_SPEC)
banner.info(f"The search designer will use: **{plain(spec_label(current))}**",
            icon=":material/dataset:")
