"""Shared UI helpers: friendly errors instead of tracebacks, query params, the connection pool."""

from __future__ import annotations

import threading

from streamlit.testing.v1 import AppTest

from app import common


def _page_with_errors():
    import streamlit as st

    from app.common import friendly_errors

    with friendly_errors("load the thing"):
        raise ValueError("learning_rate: low must be <= high, got low=1.0, high=0.1")
    with friendly_errors("draw the chart"):
        raise ZeroDivisionError("division by zero")
    st.write("the rest of the page")


def test_friendly_errors_show_a_message_and_the_page_goes_on():
    at = AppTest.from_function(_page_with_errors).run()
    assert not at.exception
    from app.common import plain

    assert [e.value for e in at.error] == [
        "Could not load the thing: "
        + plain("learning_rate: low must be <= high, got low=1.0, high=0.1"),
        "Could not draw the chart: " + plain("ZeroDivisionError: division by zero"),
    ]
    assert at.markdown[0].value == "the rest of the page"


def _page_with_params():
    import streamlit as st

    from app.common import query_int, query_ints, set_query

    st.write(repr((query_int("study"), query_ints("studies"))))
    set_query(seen=1, studies=[4, 5], study=None)


def test_query_param_helpers_ignore_garbage():
    at = AppTest.from_function(_page_with_params)
    at.query_params["study"] = "abc"
    at.query_params["studies"] = "3, x,7"
    at.run()
    assert at.markdown[0].value == "(None, [3, 7])"
    assert at.query_params["studies"] == "4,5" and "study" not in at.query_params


def test_pool_gives_one_connection_per_thread(app_db):
    pool = common.ConnectionPool(str(app_db))
    here = pool.get()
    assert pool.get() is here
    other = []
    thread = threading.Thread(target=lambda: other.append(pool.get()))
    thread.start()
    thread.join()
    assert other[0] is not here
    assert common.db_path() == app_db.resolve()


def test_status_badges():
    assert common.status_badge("interrupted").endswith("interrupted")
    assert common.status_badge("complete").endswith("done")
    assert common.status_badge("something-new") == "something-new"
