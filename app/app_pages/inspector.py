"""Model inspector page: look inside a trained model (batch norm, softmax).

This first version only announces the page; the views arrive with the inspection engine.
"""

import streamlit as st

st.title("Model inspector")
st.caption(
    "Look inside a trained model: batch-norm statistics in training and evaluation mode, "
    "per-class probabilities and the confusion matrix."
)
st.info("The model inspector is not available yet in this build.")
