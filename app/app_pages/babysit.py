"""Babysit page (Panda): watch one model train, turn its knobs between epochs, roll back.

This first version only announces the page; the controls arrive with the babysitting engine.
"""

import streamlit as st

st.title("Babysit a model")
st.caption(
    "Pick one model and train it epoch by epoch: change the learning rate, roll back to an "
    "earlier epoch, and watch every branch."
)
st.info("Babysitting sessions are not available yet in this build.")
