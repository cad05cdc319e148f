"""``nq-ray desk status|start|stop|resume|kill``: the desk operations of the HTTP API (``/api/desk/*``,
``nq_ray.serve.agents_api``) on the command line, with the same meaning and the same limits.

Where the desk is: without ``RAY_ADDRESS``, a ``DeskService`` in this process over the store
(``Runtime(settings).desk()``). Its state — halted or not and why, the loop's symbols and cadence, whether
it runs — is the store's, so ``nq-ray desk resume`` lifts a halt that another process stored, and
``status`` shows what any desk on that store recorded. A command is one short process, so it never runs
the loop's cycles itself: ``start`` records the loop as running, for the process that hosts the desk.
With ``RAY_ADDRESS`` set, every command goes to that cluster's ``trading_desk`` actor, which runs the loop.

Output: one short line per command, or the desk's whole answer with ``--json``. Errors are
``error [code]: message`` and exit 2, as in every ``nq-ray`` command.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nq_ray.errors import NQRayError

if TYPE_CHECKING:
    from nq_ray.runtime import Runtime

desk_app = typer.Typer(
    name="desk",
    help="The trading desk: status, start/stop the loop, the kill switch and resume (as /api/desk/*).",
    no_args_is_help=True,
    add_completion=False,
)

_WHO = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")  # the API's ``who`` (nq_ray.serve.agents_api)


def _check_who(value: str) -> str:
    if not _WHO.fullmatch(value):
        raise typer.BadParameter("1 to 64 characters: letters, digits and _ . @ : -")
    return value


def _check_reason(value: str) -> str:
    if not 1 <= len(value) <= 500:
        raise typer.BadParameter("1 to 500 characters")
    return value


Json = Annotated[bool, typer.Option("--json", help="the desk's whole answer as JSON")]
Who = Annotated[
    str, typer.Option(help="who does it (recorded with the halt or the resume)", callback=_check_who)
]


async def _on_desk(runtime: Runtime, method: str, *args: Any) -> dict[str, Any]:
    """``method(*args)`` on the runtime's desk: the ``trading_desk`` actor on Ray, else a ``DeskService``
    here that never runs the loop (this process ends with the command)."""
    from nq_ray.agents.service import DeskService

    desk = runtime.desk()
    if not isinstance(desk, DeskService):
        out: dict[str, Any] = await desk._call(method, *args)  # the actor's method of that name
        return out
    desk.hosts_loop = False
    try:
        answer: dict[str, Any] = await getattr(desk, method)(*args)
        return answer
    finally:
        await desk.close()


def _run(method: str, *args: Any) -> tuple[dict[str, Any], bool]:
    """The desk's answer to ``method(*args)`` and whether the desk is on Ray; an nq-ray error is printed
    as ``error [code]: message`` and exits 2."""
    from nq_ray.config import load_settings
    from nq_ray.runtime import Runtime

    try:
        runtime = Runtime.from_env(load_settings())  # the trading_desk actor when RAY_ADDRESS is set
        try:
            return asyncio.run(_on_desk(runtime, method, *args)), runtime.on_ray
        finally:
            runtime.close()
    except NQRayError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from None


def describe_status(st: dict[str, Any]) -> list[str]:
    """The desk's status in a few lines: halted or not (why, by whom), the loop, and degraded LLMs."""
    if st.get("halted"):
        head = f"desk: HALTED — {st.get('halt_reason')} (by {st.get('halted_by')} at {st.get('halted_at')})"
    else:
        head = "desk: not halted"
    loop = "running" if st.get("running") else "stopped"
    symbols = ",".join(st.get("symbols") or [])
    lines = [
        head,
        f"loop: {loop}, {symbols} every {float(st.get('cadence_s') or 0):g} s ({st.get('windows')}); "
        f"approval mode {'on' if st.get('approval_mode') else 'off'}",
    ]
    degraded = st.get("degraded")
    if degraded:
        why = "; ".join(f"{p['name']}: {p['why']}" for p in degraded.get("providers", []))
        lines.append(f"degraded: {degraded.get('reason')} ({why})")
    return lines


def _echo(out: dict[str, Any], as_json: bool, *extra: str) -> None:
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    for line in (*extra, *describe_status(out)):
        typer.echo(line)


@desk_app.command()
def status(as_json: Json = False) -> None:
    """Halted or not (why, by whom, when), the loop, approval mode, budgets, the LLM chain (degraded?)."""
    out, _ = _run("status")
    _echo(out, as_json)


@desk_app.command()
def start(
    symbol: Annotated[
        str | None, typer.Option("--symbol", "-s", help="1 to 16 root symbols, comma-separated: NQ,ES")
    ] = None,
    cadence: Annotated[
        float | None, typer.Option(help="seconds between cycles (1 to 86400)", min=1, max=86_400)
    ] = None,
    as_json: Json = False,
) -> None:
    """Start (or re-configure) the desk loop; a halted desk refuses (resume it first)."""
    symbols = None if symbol is None else [s.strip() for s in symbol.split(",") if s.strip()]
    out, on_ray = _run("start", symbols, cadence)
    note = "" if on_ray else " (recorded in the store: no desk runs in this process; RAY_ADDRESS drives one)"
    _echo(out, as_json, f"started{note}")


@desk_app.command()
def stop(as_json: Json = False) -> None:
    """Stop the loop (positions and working orders stay)."""
    out, _ = _run("stop")
    _echo(out, as_json, "stopped")


@desk_app.command()
def kill(
    reason: Annotated[
        str, typer.Option(help="why (recorded with the halt)", callback=_check_reason)
    ] = "manual",
    who: Who = "cli",
    as_json: Json = False,
) -> None:
    """The kill switch: halt (stored), stop the loop, reject pending approvals, cancel working orders and
    flatten every position; new entries are refused until 'nq-ray desk resume'."""
    out, _ = _run("kill", reason, who)
    flat = "flattened" if out.get("flatten_error") is None else f"flatten failed: {out['flatten_error']}"
    _echo(out, as_json, f"killed (record #{out.get('kill_record_id')}); {flat}")


@desk_app.command()
def resume(who: Who = "cli", as_json: Json = False) -> None:
    """Lift a halt (the kill switch's or an automatic one); the loop stays stopped until 'start'."""
    out, _ = _run("resume", who)
    _echo(out, as_json, "resumed")
