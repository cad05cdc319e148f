"""The Analysis tab in a real browser: with an LLM analyst, its commentary appears token by token while the
(scripted, OpenAI-compatible) model is still producing it, not as a replay of a finished text."""

from __future__ import annotations

from typing import Any

import pytest

from nq_ray.testing.llm_server import Step

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
WAIT_MS = 60_000
CHUNKS = tuple(f"token{i:02d} " for i in range(10))
DELAY_S = 0.4

# Every text the selector shows, with the time it was shown (ms since the page started).
WATCH_TEXT = """
(selector) => {
  window.__texts = [];
  const record = () => {
    const el = document.querySelector(selector);
    if (!el) return;
    const t = el.textContent, seen = window.__texts;
    if (!seen.length || seen[seen.length - 1].text !== t) seen.push({at: performance.now(), text: t});
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true,
    characterData: true, attributes: true});
}
"""


def _pick(page: Any, elem_id: str, option: str) -> None:
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=option, exact=True).click()


def test_the_llm_commentary_streams_in_while_the_model_produces_it(
    browser: Any, ui_server: Any, llm_server: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    llm_server.push(Step(text="".join(CHUNKS), chunks=CHUNKS, chunk_delay_s=DELAY_S))
    sent_before = len(llm_server.requests)
    try:
        page.goto(ui_server.url + "/ui/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Analysis", exact=True).click()
        page.wait_for_function(
            "() => document.querySelector('#analysis-timeframe input')?.value", timeout=WAIT_MS
        )
        _pick(page, "analysis-timeframe", "15m")
        page.get_by_label("quick").check()
        _pick(page, "analysis-analyst", "router (best available LLM)")
        page.evaluate(WATCH_TEXT, "#analysis-text")

        page.click("#analyse")
        page.wait_for_selector(f"#analysis-text:has-text('{CHUNKS[-1].strip()}')", timeout=WAIT_MS)
        page.wait_for_selector("#analysis-view [data-testid=view], #analysis-view .nq-error", timeout=WAIT_MS)
        texts = page.evaluate("() => window.__texts")
    finally:
        page.close()

    first, last = CHUNKS[0].strip(), CHUNKS[-1].strip()
    partial = [t for t in texts if first in t["text"] and last not in t["text"]]
    whole_at = next(t["at"] for t in texts if last in t["text"])
    assert len(partial) >= 5, "the commentary grew chunk by chunk"
    # the first token was on the page while the model still had 9 × 0.4 s of tokens to produce
    # the model takes 9 × 0.4 s from its first chunk to its last; the page showed the first at least half
    # of that before the whole (a loaded suite delays the first repaint, never the model)
    assert whole_at - partial[0]["at"] >= 1000 * DELAY_S * (len(CHUNKS) - 1) / 2
    streamed = [r for r in llm_server.requests[sent_before:] if r.get("stream")]
    assert len(streamed) == 1 and "15m" in streamed[0]["messages"][-1]["content"]
