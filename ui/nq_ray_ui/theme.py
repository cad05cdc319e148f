"""Look and feel: a dense, dark-friendly trading-desk theme, CSS for both themes and narrow screens."""

from __future__ import annotations

import gradio as gr


def theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue=gr.themes.colors.blue,
        secondary_hue=gr.themes.colors.slate,
        neutral_hue=gr.themes.colors.slate,
        font=["Inter", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["JetBrains Mono", "ui-monospace", "SFMono-Regular", "monospace"],
        radius_size=gr.themes.sizes.radius_sm,
        spacing_size=gr.themes.sizes.spacing_sm,
        text_size=gr.themes.sizes.text_sm,
    ).set(
        body_background_fill_dark="#0b0f17",
        block_background_fill_dark="#111827",
        background_fill_secondary_dark="#0f1622",
        block_border_color_dark="#1f2a3a",
        button_primary_background_fill="#1e88e5",
        button_primary_background_fill_hover="#1565c0",
        button_primary_text_color="#ffffff",
        button_cancel_background_fill="#c62828",
        button_cancel_text_color="#ffffff",
        block_label_background_fill="transparent",
        block_label_background_fill_dark="transparent",
        block_label_text_color="*neutral_500",
        block_label_text_color_dark="*neutral_400",
        block_title_background_fill="transparent",
        block_title_background_fill_dark="transparent",
        block_title_text_color="*neutral_500",
        block_title_text_color_dark="*neutral_400",
        block_title_padding="0",
        block_label_padding="0",
    )


# Inter is only a preference: no web font is fetched (the page works offline).
CSS = """
.gradio-container { max-width: 1600px !important; }
#nq-top { align-items: flex-start; flex-wrap: nowrap; gap: .4rem; }
#theme-toggle { flex: 0 0 auto !important; align-self: flex-start; max-height: 2rem; }
.nq-header { display: flex; flex-wrap: wrap; align-items: center; gap: .6rem 1.2rem; padding: .2rem 0; }
.nq-brand { font-weight: 700; font-size: 1.15rem; letter-spacing: .02em; }
.nq-brand small { font-weight: 400; opacity: .65; margin-left: .4rem; }
.nq-badge { display: inline-block; padding: .08rem .45rem; border-radius: 3px; font-size: .72rem;
  font-weight: 700; letter-spacing: .04em; border: 1px solid currentColor; }
.nq-badge-live { color: #26a69a; }
.nq-badge-warn { color: #f59e0b; }
.nq-badge-sample { color: #8b95a7; }
.nq-badge-down { color: #ef5350; }
.nq-dim { opacity: .65; font-size: .8rem; }
#nq-clockbar { align-items: center; gap: .4rem; flex-wrap: wrap; }
#nq-clock { flex: 1 1 360px !important; }
#clock-controls { flex: 1 1 520px !important; align-items: center; gap: .3rem; flex-wrap: wrap; }
#clock-controls button { max-height: 2.2rem; }
.nq-clock { display: flex; flex-wrap: wrap; align-items: center; gap: .3rem .9rem;
  font-variant-numeric: tabular-nums; }
.nq-clock b { font-family: var(--font-mono); }
.nq-quote { display: flex; flex-wrap: wrap; gap: .4rem 1.4rem; align-items: baseline;
  font-variant-numeric: tabular-nums; }
.nq-quote .px { font-size: 1.7rem; font-weight: 700; font-family: var(--font-mono); }
.nq-quote .up { color: #26a69a; } .nq-quote .down { color: #ef5350; }
.nq-quote .cell { display: flex; flex-direction: column; font-size: .8rem; }
.nq-quote .cell b { font-family: var(--font-mono); font-size: .95rem; }
.nq-kv { border: none !important; margin: 0 !important;
  border-collapse: collapse; width: 100%; font-size: .85rem; font-variant-numeric: tabular-nums; }
.nq-kv th { text-align: left; font-weight: 500; opacity: .75; padding: .18rem .5rem .18rem 0; }
.nq-kv td { text-align: right; font-family: var(--font-mono); padding: .18rem 0; }
.nq-kv tr, .nq-kv th, .nq-kv td { border: none !important; background: none !important; }
.nq-kv tr + tr { border-top: 1px solid var(--border-color-primary) !important; }
.nq-error { border-left: 4px solid #ef5350; background: rgba(239,83,80,.10); padding: .5rem .75rem;
  border-radius: 3px; }
.nq-error ul { margin: .3rem 0 0 1rem; }
.nq-note { border-left: 4px solid #f59e0b; background: rgba(245,158,11,.10); padding: .5rem .75rem;
  border-radius: 3px; }
.nq-ok { border-left: 4px solid #26a69a; background: rgba(38,166,154,.10); padding: .5rem .75rem;
  border-radius: 3px; }
.nq-progress { position: relative; height: 1.6rem; border-radius: 3px; overflow: hidden;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.nq-progress-bar { position: absolute; inset: 0 auto 0 0; background: rgba(30,136,229,.55);
  transition: width .25s; }
.nq-succeeded .nq-progress-bar { background: rgba(38,166,154,.55); }
.nq-failed .nq-progress-bar, .nq-cancelled .nq-progress-bar { background: rgba(239,83,80,.55);
  width: 100% !important; }
.nq-indeterminate .nq-progress-bar { width: 35% !important; animation: nq-slide 1.1s infinite linear; }
@keyframes nq-slide { from { left: -35%; } to { left: 100%; } }
.nq-progress-text { position: relative; padding: 0 .6rem; line-height: 1.6rem; font-size: .8rem;
  font-family: var(--font-mono); }
.nq-view { font-size: .9rem; }
.nq-view .bias { font-size: 1.3rem; font-weight: 700; text-transform: uppercase; }
.nq-view .bullish, .nq-view .long { color: #26a69a; } .nq-view .bearish, .nq-view .short { color: #ef5350; }
.nq-kill button, button.nq-kill { background: #b71c1c !important; color: #fff !important; font-weight: 700; }
.nq-feed { font-family: var(--font-mono); font-size: .75rem; max-height: 15rem; overflow-y: auto; }
.nq-rules td.state { font-weight: 700; text-transform: uppercase; font-size: .72rem; }
.nq-rule-ok td.state { color: #26a69a; } .nq-rule-met td.state { color: #1e88e5; }
.nq-rule-warning td.state { color: #f59e0b; } .nq-rule-pending td.state { color: #8b95a7; }
.nq-rule-breached td.state { color: #ef5350; } .nq-rule-breached { background: rgba(239,83,80,.10); }
.nq-feed div { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
@media (max-width: 640px) {
  .nq-header .nq-dim, .nq-clock .nq-dim { display: none; }
  #market-chart .legend, #market-chart .annotation { display: none; }
  .nq-header { gap: .3rem .6rem; }
  .nq-quote .px { font-size: 1.35rem; }
  .gradio-container { padding: 0 .3rem !important; }
  .tab-wrapper button, .tab-container button { padding: .3rem .5rem !important; font-size: .8rem; }
}
"""

# Apply the saved theme on load, and a toggle for the header button.
HEAD = """
<script>
(function () {
  try {
    var t = localStorage.getItem("nq-theme");
    var url = new URL(window.location.href);
    if (url.searchParams.get("__theme")) { t = url.searchParams.get("__theme"); }
    if (t === "dark") { document.addEventListener("DOMContentLoaded", function () {
      document.body.classList.add("dark"); }); }
  } catch (e) {}
})();
</script>
"""

TOGGLE_JS = """
() => {
  const dark = !document.body.classList.contains("dark");
  document.body.classList.toggle("dark", dark);
  try { localStorage.setItem("nq-theme", dark ? "dark" : "light"); } catch (e) {}
}
"""
