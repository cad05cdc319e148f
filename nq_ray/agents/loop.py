"""Body of ``nq-ray trade`` (the loop): start the desk, print every decision, stop cleanly on Ctrl-C.

The caller (``nq-ray trade``) hands in the runtime (``nq_ray.runtime.Runtime.from_env``). In process by
default: a ``DeskService`` whose tools run here and whose paper broker is an in-process ``PaperBroker``
journaled to the settings' store. With ``RAY_ADDRESS`` set (a ``cluster`` runtime) it drives the
``trading_desk`` actor of that cluster instead (``start``, then its ``events_since`` every second) and
stops it on Ctrl-C. Either way the loop's state is in the store: Ctrl-C records it as stopped, so a
restart does not resume it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from nq_ray.config import Settings, redact_url
from nq_ray.ports import DeskPort

if TYPE_CHECKING:
    from nq_ray.agents.service import DeskService, Publish

Echo = Callable[[str], None]


class DeskRuntime(Protocol):
    """What the loop needs from the composition root (``nq_ray.runtime.Runtime``): whether the desk is
    on Ray (and where), and the desk itself — a ``DeskService`` here, or a ``DeskPort`` on Ray."""

    @property
    def on_ray(self) -> bool: ...

    address: str | None

    def desk(self, *, publish: Publish | None = None) -> DeskService | DeskPort: ...

    def market(self, *, publish: Any = None) -> Any: ...


def describe_decision(event: dict[str, Any], record: dict[str, Any] | None) -> str:
    """One line per decision: when, what the analyst saw, what risk said, what was done."""
    d = (record or {}).get("decision") or {}
    view = d.get("view") or {}
    risk = d.get("risk") or {}
    p = risk.get("proposal") or {}
    head = (
        f"{event.get('at', '')[:19]} decision #{event['decision_id']} {event.get('symbol')}: "
        f"{view.get('bias', '?')} {float(view.get('confidence') or 0):.2f} ({d.get('provider', '?')})"
    )
    if event.get("halted"):
        return f"{head} → halted, no new entries: {event['halted']}"
    if event.get("action") in ("buy", "sell"):
        trade = (
            f"{event['action']} {risk.get('contracts')} @ {p.get('entry')} stop {p.get('stop')} "
            f"target {p.get('target')}"
        )
        if event.get("approval_id") is not None:
            return f"{head} → {trade}: waiting for approval #{event['approval_id']}"
        return f"{head} → {trade}: {'placed' if event.get('placed') else 'not placed'}"
    reasons = "; ".join(risk.get("reasons") or []) or "no trade"
    return f"{head} → none ({reasons[:200]})"


def describe_event(event: dict[str, Any]) -> str | None:
    """A line for the other events worth seeing in a terminal (None for the rest)."""
    kind = event.get("kind")
    if kind == "cycle_failed":
        return f"cycle failed for {event.get('symbol')}: {event.get('error')}"
    if kind in ("halted", "kill"):
        return f"desk halted: {event.get('reason')}"
    return None


async def run_loop(
    settings: Settings,
    *,
    symbols: list[str],
    cadence_s: float,
    windows: str,
    approval_mode: bool | None,
    echo: Echo,
    runtime: DeskRuntime,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the desk of ``runtime`` until ``stop`` is set (Ctrl-C or SIGTERM set it when none is given)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    if runtime.on_ray:
        desk = runtime.desk()
        assert isinstance(desk, DeskPort)
        where = runtime.address or "local"
        await _on_ray(desk, where, symbols, cadence_s, windows, approval_mode, echo, stop)
    else:
        await _in_process(settings, runtime, symbols, cadence_s, windows, approval_mode, echo, stop)


async def _in_process(
    settings: Settings,
    runtime: DeskRuntime,
    symbols: list[str],
    cadence_s: float,
    windows: str,
    approval_mode: bool | None,
    echo: Echo,
    stop: asyncio.Event,
) -> None:
    service: Any = None

    async def on_event(_type: str, event: dict[str, Any]) -> None:
        if event.get("kind") == "decision":
            record = await service.decision(int(event["decision_id"]))
            echo(describe_decision(event, record))
        elif (line := describe_event(event)) is not None:
            echo(line)

    service = runtime.desk(publish=on_event)  # the runtime owns (and closes) its in-process broker
    market = runtime.market()  # a replay's driver here (None on the wall clock)
    try:
        if market is not None:
            await market.start()
        await service.ensure()
        await service.set_windows(windows)
        if approval_mode is not None:
            await service.set_approval_mode(approval_mode)
        st = await service.start(symbols, cadence_s)
        echo(
            f"desk loop: {', '.join(st['symbols'])} every {st['cadence_s']:g} s ({windows}); "
            f"store {redact_url(settings.store_url)}; Ctrl-C stops"
        )
        await stop.wait()
    finally:
        if service._ready:
            await service.stop()
        await service.close()
        if market is not None:
            await market.stop()
    echo(f"desk loop stopped after {service.cycles} cycle(s)")


async def _on_ray(
    desk: DeskPort,
    where: str,
    symbols: list[str],
    cadence_s: float,
    windows: str,
    approval_mode: bool | None,
    echo: Echo,
    stop: asyncio.Event,
) -> None:
    await desk.ready()
    seq = max((e["seq"] for e in await desk.events_since(0)), default=0)
    await desk.set_windows(windows)
    if approval_mode is not None:
        await desk.set_approval_mode(approval_mode)
    st = await desk.start(symbols, cadence_s)
    echo(f"desk loop on Ray ({where}): {', '.join(st['symbols'])} every {cadence_s:g} s")
    try:
        while not stop.is_set():
            for event in await desk.events_since(seq):
                seq = max(seq, event["seq"])
                if event.get("kind") == "decision":
                    echo(describe_decision(event, await desk.decision(int(event["decision_id"]))))
                elif (line := describe_event(event)) is not None:
                    echo(line)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await desk.stop()
    echo("desk loop stopped (the trading_desk actor keeps running, idle)")
