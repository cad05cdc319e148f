"""Small HTML renderers for API answers: badges, key/value tables, errors, job progress."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from nq_ray_ui.client import ApiError, NotAvailable


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def usd(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = float(value)
    text = f"${abs(v):,.2f}"
    if v < 0:
        return "−" + text
    return ("+" + text) if signed and v > 0 else text


def num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:,.{digits}f}"
    return str(value)


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percent (0.726 → "72.6%"): backtest returns, win rates, confidences, limits."""
    return "—" if value is None else f"{float(value) * 100:.{digits}f}%"


def percent(value: Any, digits: int = 1) -> str:
    """A value the API already states in percent (72.6 → "72.6%"): a tool answer's ``*_pct`` fields
    (``margin_use_pct``, ``change_pct``), whose schema says "percent", unlike the settings' fractions."""
    return "—" if value is None else f"{float(value):.{digits}f}%"


def error_html(err: BaseException | str, what: str | None = None) -> str:
    """A readable error box: the API's message and, for validation problems, each field's problem."""
    if isinstance(err, NotAvailable):
        return (
            '<div class="nq-note" role="status"><b>Not available from this server.</b> '
            f"{esc(err.message)}. Upgrade the nq-ray server to use this panel.</div>"
        )
    message = err.message if isinstance(err, ApiError) else str(err)
    items = ""
    if isinstance(err, ApiError) and err.errors:
        lis = "".join(
            f"<li><code>{esc(e.get('field') or e.get('key') or e.get('loc') or e.get('path') or '')}</code> "
            f"{esc(e.get('problem') or e.get('allowed') or e.get('msg') or e.get('message') or '')}"
            f"{' (got ' + esc(e['value']) + ')' if e.get('value') is not None else ''}</li>"
            for e in err.errors[:8]
        )
        items = f"<ul>{lis}</ul>"
    head = f"{esc(what)} failed: " if what else ""
    return f'<div class="nq-error" role="alert"><b>{head}</b>{esc(message)}{items}</div>'


def ok_html(message: str) -> str:
    return f'<div class="nq-ok" role="status">{esc(message)}</div>'


def source_badge(origin: dict[str, Any] | None) -> str:
    """The data source named plainly: LIVE, DELAYED, SAMPLE or SYNTHETIC."""
    if not origin:
        return '<span class="nq-badge nq-badge-warn">SOURCE UNKNOWN</span>'
    source = str(origin.get("source", "?"))
    if origin.get("live"):
        kind, cls = "LIVE", "nq-badge-live"
    elif source.startswith("yahoo"):
        kind, cls = "DELAYED", "nq-badge-warn"
    elif source == "synthetic":
        kind, cls = "SYNTHETIC", "nq-badge-warn"
    else:
        kind, cls = "SAMPLE · NOT LIVE", "nq-badge-sample"
    note = origin.get("note") or source
    badge = f'<span class="nq-badge {cls}" title="{esc(note)}" data-testid="source">{kind}</span>'
    return badge + f'<span class="nq-dim"> {esc(note)}</span>'


def kv_table(rows: dict[str, Any] | list[tuple[str, Any]], cls: str = "") -> str:
    items = rows.items() if isinstance(rows, dict) else rows
    body = "".join(
        f"<tr><th>{esc(k)}</th><td>{v if _is_html(v) else esc(num(v))}</td></tr>" for k, v in items
    )
    return f'<table class="nq-kv {cls}">{body}</table>'


class Html(str):
    """Marks a value already rendered as HTML."""


def _is_html(v: Any) -> bool:
    return isinstance(v, Html)


def progress_html(state: dict[str, Any] | None, label: str = "job") -> str:
    """A progress bar for a job (``/api/jobs/{id}``): determinate when the job reports progress."""
    if not state:
        return ""
    status = str(state.get("status", "pending"))
    progress, total = state.get("progress"), state.get("total")
    frac: float | None = None
    if progress is not None:
        frac = float(progress) / float(total) if total else float(progress)
        frac = max(0.0, min(1.0, frac if frac <= 1 else frac / 100))
    if status == "succeeded":
        frac = 1.0
    done = status in ("succeeded", "failed", "cancelled")
    width = f"{(frac or 0) * 100:.0f}%"
    indeterminate = "" if frac is not None or done else " nq-indeterminate"
    text = f"{label}: {status}"
    if frac is not None:
        text += f" · {frac * 100:.0f}%"
    if state.get("message"):
        text += f" · {state['message']}"
    if state.get("elapsed_s") is not None:
        text += f" · {state['elapsed_s']:.1f} s"
    return (
        f'<div class="nq-progress nq-{esc(status)}{indeterminate}" data-status="{esc(status)}" '
        f'role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="{(frac or 0) * 100:.0f}">'
        f'<div class="nq-progress-bar" style="width:{width}"></div>'
        f'<span class="nq-progress-text">{esc(text)}</span></div>'
    )


def frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of dicts as a table: the named columns that exist, or every scalar column."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame({"": ["nothing yet"]})
    if columns:
        keep = [c for c in columns if c in df.columns]
        if keep:
            df = df[keep]
    else:
        df = df[[c for c in df.columns if df[c].map(lambda v: not isinstance(v, dict | list)).all()]]
    for c in df.columns:
        if df[c].dtype == float:
            df[c] = df[c].round(4)
    return df


def _cell(value: Any) -> str:
    return esc(num(value)) if not isinstance(value, dict | list) else esc(", ".join(map(str, value)))


def _cost(value: Any) -> str:
    """An LLM call's cost: cents hide it (a call costs fractions of a cent), so four decimals."""
    return "—" if value is None else f"${float(value):,.4f}"


def committee_html(committee: dict[str, Any] | None) -> str:
    """A model committee's outcome and each member's answer (provider · model, bias, confidence, latency,
    tokens, cost, reasoning or error), as a decision records it under ``committee``."""
    if not committee:
        return ""
    decision = committee.get("decision")
    no_entry = committee.get("no_entry_reason")
    badge = '<span class="nq-badge {}" data-testid="committee-outcome">{}</span>'
    outcome = (
        badge.format("nq-badge-warn", "NO ENTRY") + f" {esc(no_entry)}"
        if no_entry
        else badge.format("nq-badge-live", esc(str(decision or "—").upper()))
    )
    votes = committee.get("votes")
    if isinstance(votes, dict):
        votes = ", ".join(f"{k} {v}" for k, v in votes.items())
    agreement = committee.get("agreement")
    summary = [
        ("rule", committee.get("rule")),
        ("quorum", committee.get("quorum")),
        ("votes", votes),
        ("agreement", pct(agreement, 0) if isinstance(agreement, int | float) else agreement),
    ]
    debate = committee.get("debate")
    if debate:
        summary.append(("debate", "yes" if debate is True else _cell(debate)))
    head = "<th>member</th><th>answer</th><th>latency</th><th>tokens in / out</th><th>cost</th><th>round</th>"
    rows = []
    for m in committee.get("members") or []:
        who = f"{m.get('name', '?')} · {m.get('provider') or '?'}" + (
            f" · {m['model']}" if m.get("model") else ""
        )
        if m.get("ok", True) and not m.get("error"):
            conf = m.get("confidence")
            answer = (
                f'<b class="bias {esc(str(m.get("bias", "")).lower())}">{esc(m.get("bias", "—"))}</b>'
                f"{' ' + pct(conf, 0) if isinstance(conf, int | float) else ''}"
                f'<div class="nq-dim">{esc(m.get("reasoning") or "")}</div>'
            )
        else:
            answer = f'<span class="nq-badge nq-badge-down">FAILED</span> {esc(m.get("error") or "")}'
        latency = f"{float(m['latency_ms']):,.0f} ms" if m.get("latency_ms") is not None else "—"
        tokens = f"{num(m.get('prompt_tokens'))} / {num(m.get('completion_tokens'))}"
        rows.append(
            f'<tr data-testid="committee-member"><td>{esc(who)}</td><td>{answer}</td><td>{latency}</td>'
            f"<td>{tokens}</td><td>{_cost(m.get('cost_usd'))}</td><td>{esc(num(m.get('round')))}</td></tr>"
        )
    table = f'<table class="nq-committee"><tr>{head}</tr>{"".join(rows)}</table>' if rows else ""
    return (
        f'<div class="nq-committee-box" data-testid="committee"><h4>Committee {outcome}</h4>'
        f"{kv_table([(k, v) for k, v in summary if v is not None])}{table}</div>"
    )


def find_key(obj: Any, key: str, depth: int = 4) -> Any:
    """The first value under ``key`` in nested dicts (a decision keeps its analysis under ``decision``,
    ``report``, ... depending on who recorded it)."""
    if depth < 0 or not isinstance(obj, dict):
        return None
    if obj.get(key) is not None:
        return obj[key]
    for v in obj.values():
        if isinstance(v, dict) and (found := find_key(v, key, depth - 1)) is not None:
            return found
    return None


def decision_html(decision: dict[str, Any] | None) -> str:
    """A recorded decision as the trader reads it: who decided what, the prompt template and version it
    was asked with, the committee's votes when a committee answered, the risk verdict."""
    if not decision:
        return ""
    rows: list[tuple[str, Any]] = []
    for k in ("id", "at", "agent", "symbol", "action", "provider", "model"):
        if decision.get(k) is not None and not isinstance(decision[k], dict | list):
            rows.append((k, decision[k]))
    template = find_key(decision, "template")
    if isinstance(template, str):
        version = find_key(decision, "template_version")
        rows.append(("prompt template", f"{template} v{version}" if version is not None else template))
    view = find_key(decision, "view")
    if isinstance(view, dict) and view.get("bias"):
        conf = view.get("confidence")
        rows.append(
            ("view", f"{view['bias']}" + (f" {pct(conf, 0)}" if isinstance(conf, int | float) else ""))
        )
    verdict = find_key(decision, "verdict")
    if isinstance(verdict, dict) and "approved" in verdict:
        rows.append(("risk verdict", "approved" if verdict["approved"] else "denied"))
    committee = find_key(decision, "committee")
    return (
        '<div class="nq-decision" data-testid="decision">'
        + kv_table(rows)
        + (committee_html(committee) if isinstance(committee, dict) else "")
        + "</div>"
    )


RULE_STATES = ("ok", "warning", "breached", "met", "pending")  # nq_ray.propfirm.RuleStatus.state


def rule_value(value: Any, unit: str | None) -> str:
    """A rule's value, limit or distance in its unit (usd, pct, minutes, contracts, days)."""
    if value is None:
        return "—"
    if unit == "usd":
        return usd(value)
    if unit == "pct":
        return percent(value)
    if unit == "minutes":
        return f"{float(value):,.0f} min"
    return num(value, 0 if float(value).is_integer() else 2)
