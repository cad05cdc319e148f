"""The live account under a prop-firm rule pack, and the economic calendar's blackouts, for the runtime's
paper broker (``nq_ray.runtime.broker.BrokerService``).

``LivePropFirm`` holds what the broker's gate needs beyond its limits: the active pack
(``Settings.propfirm.pack``, live-patchable: a new pack is in force for the next order), the account's
``PropState`` under it, the calendar (bundled, plus ``Settings.events.calendar_files``) and the blackout
rules (``Settings.events.blackouts`` plus the pack's news rules). The broker calls ``sync`` after every
fill and mark and before every order decision, on its own clock (the replay's in a replay), so the
session day rolls when the exchange's day does; the book's gate then gets ``prop=(pack, state)`` and
``blackout=calendar.blackout_at(now, rules)``.

**The account under a pack.** A pack is activated at the account's balance then, but it is tracked on the
pack's own starting balance: the state's balance is ``pack.starting_balance_usd`` plus the account's P&L
since activation (``offset_usd``), so a 50K combine run on a 100K paper account has the 50K combine's
floors and scaling steps. Each pack's state is kept (a pack switched away from and back to carries on
where it was: an account failed under a pack stays failed).

**Durable.** The states live in the store (``desk_state``, key ``propfirm``), written whenever one changes;
a restarted broker reads them back, so a failed account is still failed and a stopped day still stopped
until the next session day.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nq_ray.market.calendar import Blackout, BlackoutRule, EconomicCalendar, shared_calendar
from nq_ray.market.sessions import session_date
from nq_ray.propfirm.model import RulePack
from nq_ray.propfirm.packs import settings_pack
from nq_ray.propfirm.state import PropState, evaluate, flatten_due, mark, start
from nq_ray.store.desk import DeskStore

if TYPE_CHECKING:
    from nq_ray.execution.broker import Broker
    from nq_ray.runtime.journal import Journal

log = logging.getLogger(__name__)

STATE_KEY = "propfirm"  # desk_state row of the live account's prop-firm states
UPCOMING = timedelta(hours=24)  # how far ahead ``status`` lists the calendar's events
UNCOVERED_WARN = timedelta(days=35)  # a blackout kind with no release known this far ahead is logged
FLATTEN_PREFIX = "prop-flat-"  # client order ids of the flattens the pack or a news window forces


def active_pack(settings: Any) -> RulePack | None:
    """The pack the settings name (``None``: no pack); an unknown name or a bad file raises the loader's
    typed error (which lists the known packs)."""
    name = settings.propfirm.pack
    return None if not name else settings_pack(name, settings)


def check_live_pack(patch: Any, settings: Any) -> None:
    """Refuse a live patch whose ``propfirm.pack`` does not load (the settings already refuse an unknown
    name, listing the known ones; this loads the file: a malformed pack names its file, line and rule)."""
    section = patch.get("propfirm") if isinstance(patch, dict) else None
    if isinstance(section, dict) and section.get("pack") is not None:
        active_pack(settings)


def news_rules(pack: RulePack | None) -> list[BlackoutRule]:
    """A pack's news rules as calendar blackout rules."""
    if pack is None:
        return []
    return [
        BlackoutRule(kinds=list(r.kinds), before_min=r.before_min, after_min=r.after_min, action=r.action)
        for r in pack.rules
        if r.kind == "news"
    ]


class LivePropFirm:
    """The live account's prop-firm pack, its state (stored) and the calendar's blackouts (module
    docstring). Blocking: it writes through the broker's journal; one caller at a time (the broker)."""

    def __init__(self, journal: Journal, settings: Any) -> None:
        self.journal = journal
        self.store = DeskStore(journal.repo)
        stored = journal.run(self.store.get_state(STATE_KEY)) or {}
        self.accounts: dict[str, dict[str, Any]] = dict(stored.get("accounts") or {})
        self.pack: RulePack | None = None
        self.state: PropState | None = None
        self.calendar: EconomicCalendar | None = None
        self._events: str | None = None  # the event settings the calendar was built from
        self.rules: list[BlackoutRule] = []
        self.last_flatten: dict[str, Any] | None = None
        self.configure(settings)

    # ---- settings -------------------------------------------------------------------------------

    def configure(self, settings: Any) -> None:
        """Take (new) settings: the active pack, the calendar files and the blackout rules. The pack's
        state is read back when the account has traded under it before, else started at the next sync."""
        pack = active_pack(settings)
        events = settings.events.model_dump_json(exclude={"blackouts"})
        if events != self._events:
            self.calendar = shared_calendar(settings.events)  # the tools' and agents' calendar too
            self._events = events
            kinds = [k for rule in settings.events.blackouts for k in rule.kinds]
            soon = datetime.now(UTC) + UNCOVERED_WARN
            if gaps := self.calendar.uncovered(kinds, soon):
                log.warning(
                    "economic calendar: its last release of %s; none is known after that, so later "
                    "ones get no blackout: load the agency's schedule into events.calendar_files "
                    "(docs/calendar.md)",
                    ", ".join(f"{k} is on {t:%Y-%m-%d}" if t else f"{k}: none" for k, t in gaps.items()),
                )
        if pack is None or self.pack is None or pack.name != self.pack.name:
            self.state = None
            if pack is not None and pack.name in self.accounts:
                self.state = PropState.model_validate(self.accounts[pack.name]["state"])
        self.pack = pack
        self.rules = list(settings.events.blackouts) + news_rules(pack)

    # ---- the account ----------------------------------------------------------------------------

    def attach(self, book: Broker) -> None:
        """Give ``book``'s gate the blackouts and the stored state (before the first ``sync``)."""
        book.blackout_at = self.blackout_at
        book.prop = (self.pack, self.state) if self.pack is not None and self.state is not None else None

    def blackout_at(self, at: datetime) -> Blackout | None:
        """The blackout window in force at ``at`` (the settings' rules and the pack's news rules)."""
        if self.calendar is None or not self.rules:
            return None
        return self.calendar.blackout_at(at, self.rules)

    def sync(self, book: Broker, at: datetime | None, *, traded: bool = False) -> PropState | None:
        """Mark the pack's state with the book's balance and equity at ``at`` (rolling the session day
        when ``at`` is in a later one), store it when it changed, and hand the gate ``(pack, state)``."""
        self.attach(book)
        pack = self.pack
        if pack is None or at is None:
            return self.state
        snap = book.account(at)
        acc = self.accounts.get(pack.name)
        if acc is None or self.state is None:
            state = start(pack, at)
            offset = pack.starting_balance_usd - snap.balance_usd
            acc = {"offset_usd": offset, "activated_at": at.isoformat(), "pack_version": pack.version}
            self.accounts[pack.name] = acc
            self.state, changed = state, True
        else:
            changed = False
        offset = float(acc["offset_usd"])
        old = self.state
        if session_date(at) < old.session_day:  # a clock behind the state (e.g. a replay of older days)
            log.warning("%s: state at %s, after %s: not marked", pack.name, old.session_day, at)
            book.prop = (pack, old)
            return old
        new = mark(
            pack,
            old,
            at=at,
            balance_usd=snap.balance_usd + offset,
            equity_usd=snap.equity_usd + offset,
            traded=traded,
        )
        self.state = new
        # stored when something but the mark's time changed (not on every quote)
        if changed or new.model_copy(update={"last_mark": old.last_mark}) != old:
            self._save(at)
        book.prop = (pack, new)
        return new

    def _save(self, at: datetime) -> None:
        assert self.pack is not None and self.state is not None
        acc = self.accounts[self.pack.name]
        acc["state"] = self.state.model_dump(mode="json")
        acc["pack_version"] = self.pack.version
        value = {"active": self.pack.name, "accounts": self.accounts}
        self.journal.run(self.store.set_state(STATE_KEY, value, at=at))

    def flatten_reason(self, at: datetime) -> str | None:
        """Why every position must be flat now: the pack's (failed, day stopped, flat-by time, a news
        flatten window) or a settings blackout whose action is ``flatten``; ``None`` otherwise."""
        b = self.blackout_at(at)
        if self.pack is not None and self.state is not None:
            why = flatten_due(self.pack, self.state, at, blackout=b)
            if why:
                return why
        if b is not None and b.rule.action == "flatten":
            return f"event blackout: {b.event.title} at {b.event.time.isoformat()} (flatten)"
        return None

    # ---- what tools, resources and the UI show --------------------------------------------------

    def status(self, book: Broker, at: datetime | None, positions: Mapping[str, int]) -> dict[str, Any]:
        """The active pack, every rule's current value, limit and distance, the account's state under
        it, the blackout in force and the upcoming events (JSON-able)."""
        blackout = self.blackout_at(at) if at is not None else None
        cal = self.calendar
        upcoming = cal.next_events(at, UPCOMING) if at is not None and cal is not None else []
        out: dict[str, Any] = {
            "as_of": at.isoformat() if at is not None else None,
            "pack": None,
            "rules": [],
            "state": None,
            "status": None,
            "flatten_due": self.flatten_reason(at) if at is not None else None,
            "last_flatten": self.last_flatten,
            "blackout": _blackout(blackout),
            "blackout_rules": [r.model_dump(mode="json") for r in self.rules],
            "upcoming_events": [e.model_dump(mode="json") for e in upcoming],
        }
        pack, state = self.pack, self.state
        if pack is None:
            return out
        out["pack"] = {
            "name": pack.name,
            "firm": pack.firm,
            "program": pack.program,
            "phase": pack.phase,
            "version": pack.version,
            "account_size_usd": pack.account_size_usd,
            "starting_balance_usd": pack.starting_balance_usd,
            "checked": str(pack.checked),
            "sources": [str(s) for s in pack.sources],
        }
        if state is None:
            out["status"] = "not started (no market time yet)"
            return out
        rules = evaluate(pack, state, positions=dict(positions), at=at)
        out["rules"] = [r.model_dump(mode="json") for r in rules]
        out["state"] = state.model_dump(mode="json")
        out["offset_usd"] = self.accounts.get(pack.name, {}).get("offset_usd")
        if state.failed is not None:
            out["status"] = f"failed: {state.failed.rule}"
        elif state.stopped_day is not None and state.stopped_day == state.session_day.isoformat():
            out["status"] = f"stopped for the day ({state.stopped_day})"
        elif state.passed_at is not None:
            out["status"] = "passed"
        else:
            out["status"] = "active"
        return out


def _blackout(b: Blackout | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {
        "event": b.event.model_dump(mode="json"),
        "action": b.rule.action,
        "starts": b.starts.isoformat(),
        "ends": b.ends.isoformat(),
    }
