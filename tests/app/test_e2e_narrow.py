"""At 1,024 px wide (a laptop with the sidebar open), in a real headless Chromium: no word of
the search designer or the babysit form is broken across two lines, and every number box
shows its whole number (issue 12 item 16: "learning_r / ate", "momentu / m"; "0.0001" cut to
"0.000", "0.9000" to "0.900").

A break is *mid-word* when the characters on both sides of it are letters or digits (a line
may break at a space, after an underscore or a hyphen). Measured per character with DOM
ranges, over every text in Markdown and caption elements of the page's main area.
"""

from __future__ import annotations

import pytest

from engine import babysit
from engine.storage.db import connect
from tests.app.conftest import poll, screenshot, wait_settled
from tests.app.fakes import fake_study

pytestmark = pytest.mark.browser

BROKEN_WORDS = r"""() => {
  const out = [];
  const word = /[\p{L}\p{N}]/u;
  const boxes = document.querySelectorAll(
    '[data-testid="stMain"] [data-testid="stMarkdownContainer"],' +
    '[data-testid="stMain"] [data-testid="stCaptionContainer"],' +
    '[data-testid="stMain"] [data-testid="stWidgetLabel"]');
  for (const box of boxes) {
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent;
      let lastTop = null;
      for (let i = 0; i < text.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect || rect.width === 0) continue;
        if (lastTop !== null && rect.top > lastTop + 2 && i > 0
            && word.test(text[i - 1]) && word.test(text[i])) {
          out.push(text.slice(0, i) + " / " + text.slice(i));
        }
        lastTop = rect.top;
      }
    }
  }
  return out;
}"""

CUT_NUMBERS = r"""() => {
  // The text's width in the input's own font against the room inside its padding (a number
  // box does not scroll, so scrollWidth cannot tell).
  const out = [];
  const canvas = document.createElement("canvas").getContext("2d");
  for (const input of document.querySelectorAll(
      '[data-testid="stMain"] [data-testid="stNumberInput"] input,' +
      '[data-testid="stMain"] [data-testid="stTextInput"] input')) {
    if (!input.value) continue;
    const style = getComputedStyle(input);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const need = canvas.measureText(input.value).width;
    if (need > room + 0.5) {
      const label = input.getAttribute("aria-label") || "?";
      out.push(`${label}=${input.value} (${need.toFixed(0)} px in ${room.toFixed(0)})`);
    }
  }
  return out;
}"""

# A label is cut when a part of it overflows inside the button, or when the button itself ends
# past its element's box: a segmented control scrolls its row of buttons sideways instead of
# wrapping, so its last segment is clipped with no overflow inside any button.
CUT_LABELS = r"""() => Array.from(document.querySelectorAll(
    '[data-testid="stMain"] button, [data-testid="stMain"] [data-testid="stPageLink"]'))
  .filter(b => Array.from(b.querySelectorAll('*')).some(e => e.scrollWidth > e.clientWidth + 1)
    || (b.closest('[data-testid="stElementContainer"]') || b).getBoundingClientRect().right + 1
       < b.getBoundingClientRect().right)
  .map(b => b.innerText)"""

CUT_METRICS = r"""() => Array.from(document.querySelectorAll(
    '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *,' +
    '[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *'))
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport={"width": 1024, "height": 2400})
    tab = context.new_page()
    tab.set_default_timeout(60_000)  # a loaded machine draws the designer slowly
    try:
        yield tab
    finally:
        context.close()


def open_settled(page, url: str, ready: str) -> None:
    page.goto(url)
    page.locator(ready).first.wait_for(timeout=150_000)  # the designer's first draw is slow
    wait_settled(page, timeout=60)                     # on a loaded machine (20 s seen)


def test_the_designer_at_1024_px_breaks_no_word_and_cuts_no_number(streamlit_server, laptop):
    open_settled(laptop, f"{streamlit_server['url']}/designer",
                 'button:has-text("Launch search")')
    laptop.locator('[data-testid="stMain"] .js-plotly-plot').first.wait_for()
    wait_settled(laptop, timeout=60)
    screenshot(laptop, "narrow-1-designer-1024")
    assert laptop.evaluate(BROKEN_WORDS) == []
    assert laptop.evaluate(CUT_NUMBERS) == []
    assert laptop.evaluate(CROWDED_TITLES) == []  # a preview's title ran out of its chart


def test_the_babysit_forms_at_1024_px_show_whole_numbers(streamlit_server, laptop):
    url = streamlit_server["url"]
    open_settled(laptop, f"{url}/babysit", 'button:has-text("Start the session")')
    screenshot(laptop, "narrow-2-babysit-new-1024")
    assert laptop.evaluate(CUT_NUMBERS) == []
    assert laptop.evaluate(BROKEN_WORDS) == []
    conn = connect(streamlit_server["db"])
    session_id = babysit.new_session(
        conn, name="narrow", model={"hidden": [8], "batch_norm": True},
        dataset={"kind": "moons", "n_samples": 100, "seed": 0},
        config={"learning_rate": 1e-4, "l2": 7.15437745364513e-05, "beta2": 0.99999,
                "dropout": 0.1234, "bn_momentum": 0.0001,
                "beta1": 0.9962684670368088}, seed=0)  # l2 and beta1 as a search draws them
    conn.close()
    open_settled(laptop, f"{url}/babysit?session={session_id}",
                 '[data-testid="stForm"]:has-text("Training knobs")')
    # every knob has arrived (no skeleton left) before the page is measured
    poll(lambda: set(laptop.evaluate("""() => Array.from(document.querySelectorAll(
        '[data-testid="stForm"] input[type="number"]')).map(i => i.value)""")) >= {
        "0.0001", "0.99999", "0.1234", "0.996268", "0.00007154"}, timeout=60)
    screenshot(laptop, "narrow-3-babysit-knobs-1024")
    assert laptop.evaluate(CUT_NUMBERS) == []
    assert laptop.evaluate(CUT_METRICS) == []  # the learning rate reads 1e-4, not "0.0…"
    assert laptop.evaluate(CUT_LABELS) == []  # "Choose another session", "Run until paused"


def test_the_overview_and_compare_at_1024_px_cut_no_button_label(streamlit_server, laptop):
    """The first buttons a newcomer sees ("▶ Run the demo study", its three links, "Run random
    vs zoom vs GP") once read "▶ Run the demo…" and "Design your own searc"."""
    url = streamlit_server["url"]
    open_settled(laptop, f"{url}/", 'button:has-text("Run the demo study")')
    assert laptop.evaluate(CUT_LABELS) == []
    open_settled(laptop, f"{url}/compare", 'button:has-text("Run random vs zoom vs GP")')
    screenshot(laptop, "narrow-4-compare-1024")
    assert laptop.evaluate(CUT_LABELS) == []


def test_the_compare_controls_and_resume_at_1024_px_cut_no_label(streamlit_server, laptop):
    """With studies to compare, the Score choice once showed "best validatio" for "best
    validation loss" (two segments in half of a 1,024 px page's main area); a stopped study's
    "Resume" in the overview's list had never been measured."""
    url = streamlit_server["url"]
    conn = connect(streamlit_server["db"])
    first = fake_study(conn, 4, 2, name="stopped one", status="stopped", finished=2)
    second = fake_study(conn, 4, 2, name="second", seed=1)
    third = fake_study(conn, 24, 2, name="third", seed=2)
    conn.close()
    open_settled(laptop, f"{url}/", 'button:has-text("Resume")')
    screenshot(laptop, "narrow-5-overview-resume-1024")
    assert laptop.evaluate(CUT_LABELS) == []
    open_settled(laptop, f"{url}/compare?studies={first},{second},{third}",
                 'button:has-text("best validation loss")')
    laptop.locator('[data-testid="stMain"] .js-plotly-plot .bars').first.wait_for()
    screenshot(laptop, "narrow-6-compare-studies-1024")
    assert laptop.evaluate(CUT_LABELS) == []
    # the distinct-values bars: three studies' counts read "242424", names "learni"
    assert laptop.evaluate(CROWDED_BARS) == []


def test_the_study_page_at_1024_px_cuts_no_figure_or_its_name(streamlit_server, laptop):
    """The live study's four figures in four equal columns read "Best validation acc…" and
    "Pruned / diverged / …" at 1,024 px; an elapsed "4,321 s" needs more than its column."""
    conn = connect(streamlit_server["db"])
    study_id = fake_study(conn, 6, 3, name="narrow study")
    # as a long study reads: 11,520 epochs in 4,321 s (two of the widest figures)
    conn.execute("UPDATE studies SET created_at = updated_at - 4321 WHERE id = ?", (study_id,))
    conn.execute("UPDATE trials SET epochs_done = 1920 WHERE study_id = ?", (study_id,))
    conn.close()
    open_settled(laptop, f"{streamlit_server['url']}/studies?study={study_id}",
                 '[data-testid="stMetricLabel"]:has-text("Elapsed")')
    screenshot(laptop, "narrow-7-study-1024")
    assert laptop.evaluate(CUT_METRICS) == []
    assert laptop.evaluate(CUT_LABELS) == []
    laptop.locator('[data-testid="stMain"] .js-plotly-plot .legend').first.wait_for()
    assert laptop.evaluate(LEGEND_OUT) == []  # the curves' legend ran off at "val: trial"


def test_the_data_page_at_1024_px_cuts_no_figure_or_link(streamlit_server, laptop):
    """Four figures in a row in two thirds of the page read "Training ex…" and "Validation …",
    and the link under the dataset's controls "Go to the search designe"."""
    open_settled(laptop, f"{streamlit_server['url']}/data",
                 '[data-testid="stMetricLabel"]:has-text("Classes")')
    screenshot(laptop, "narrow-8-data-1024")
    assert laptop.evaluate(CUT_METRICS) == []
    assert laptop.evaluate(CUT_LABELS) == []


# Plotly titles (subplot titles are annotations) that run into each other or out of their
# chart: their boxes, measured in the page
CROWDED_TITLES = r"""() => {
  const out = [];
  for (const plot of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    const texts = Array.from(plot.querySelectorAll('.annotation-text, .gtitle'))
      .map(e => [e.textContent, e.getBoundingClientRect()]).filter(([t, r]) => r.width > 0);
    texts.forEach(([t, r], i) => {
      if (r.left < box.left - 1 || r.right > box.right + 1) out.push(t + " (out)");
      texts.slice(i + 1).forEach(([u, s]) => {
        if (r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom)
          out.push(t + " / " + u);
      });
    });
  }
  return out;
}"""


# The numbers on a bar chart's bars closer than 2 px to each other (side by side they read as
# one number), and tick labels under the chart's legend or past its edge
CROWDED_BARS = r"""() => {
  const out = [];
  const near = (r, s, gap) => r.left < s.right + gap && s.left < r.right + gap
    && r.top < s.bottom - 2 && s.top < r.bottom - 2;  // on one line, at most gap apart
  for (const plot of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
    if (!plot.querySelector('.bars')) continue;
    const box = plot.getBoundingClientRect();
    const rects = Array.from(plot.querySelectorAll('.bars text'))
      .map(e => [e.textContent, e.getBoundingClientRect()]).filter(([t, r]) => r.width > 0);
    rects.forEach(([t, r], i) => rects.slice(i + 1).forEach(([u, s]) => {
      if (near(r, s, 2)) out.push(t + " / " + u);
    }));
    const legend = plot.querySelector('.legend');
    const lbox = legend ? legend.getBoundingClientRect() : null;
    for (const e of plot.querySelectorAll('.xtick text, .ytick text, .g-xtitle text')) {
      const r = e.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.left < box.left - 1 || r.bottom > box.bottom + 1) out.push(e.textContent + " (cut)");
      if (lbox && lbox.width > 0 && near(r, lbox, 0)) out.push(e.textContent + " (legend)");
    }
  }
  return out;
}"""


# Legend entries of a Plotly chart that end past its right edge
LEGEND_OUT = r"""() => {
  const out = [];
  for (const plot of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    for (const t of plot.querySelectorAll('.legend .traces')) {
      const r = t.getBoundingClientRect();
      if (r.width > 0 && r.right > box.right + 1) out.push(t.textContent);
    }
  }
  return out;
}"""


def test_the_inspector_at_1024_px_cuts_no_button_and_crowds_no_title(streamlit_server, laptop):
    """"Choose another…" was cut, and the batch-norm histograms' titles ran into each other
    ("before batch normafter normalisation: (z − mean")."""
    conn = connect(streamlit_server["db"])
    session_id = babysit.new_session(
        conn, name="inspected", model={"hidden": [8], "batch_norm": True},
        dataset={"kind": "moons", "n_samples": 100, "seed": 0},
        config={"learning_rate": 0.01}, seed=0)
    conn.close()
    open_settled(laptop, f"{streamlit_server['url']}/inspector?session={session_id}",
                 '[data-testid="stMain"] .js-plotly-plot')
    screenshot(laptop, "narrow-9-inspector-1024")
    assert laptop.evaluate(CUT_LABELS) == []
    assert laptop.evaluate(CROWDED_TITLES) == []
