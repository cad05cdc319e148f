"""The tests mirror the package: every module ``nq_ray/<pkg>/<mod>.py`` has ``tests/<pkg>/test_<mod>.py``
(a module in a sub-package, e.g. ``nq_ray/data/sources/yahoo.py``, may have it in an enclosing test folder:
``tests/data/test_yahoo.py``), or it is listed in ``COVERED_ELSEWHERE`` below with the test module that
covers it. A new module without either fails here with the exact line to add."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nq_ray"
TESTS = ROOT / "tests"

# module (or a folder ending in "/") → the test module(s) that cover it, found by grepping tests/ for
# imports of the module or of what it defines. Keep it honest: name a test that exercises the module.
COVERED_ELSEWHERE: dict[str, str] = {
    "nq_ray/store/replay.py": "tests/runtime/test_replay.py",  # continued, never going back
    "nq_ray/ports.py": "tests/runtime/test_ports.py",  # every adapter checked against its port
    "nq_ray/runtime/metrics.py": "tests/runtime/test_registry.py",  # the registry actor's counters
    "nq_ray/settings/llm.py": "tests/settings/test_settings.py",  # and tests/llm/test_config.py
    "nq_ray/settings/risk.py": "tests/settings/test_settings.py",  # and tests/risk/test_limits.py
    "nq_ray/settings/propfirm.py": "tests/settings/test_settings.py",  # the pack name checked at load
    "nq_ray/settings/events.py": "tests/market/test_calendar.py",  # BlackoutRule, EventSettings, the files
    "nq_ray/agents/backtest.py": "tests/agents/test_agent_backtest.py",
    "nq_ray/agents/seed.py": "tests/agents/test_seed_api.py",  # each seed snippet, both call styles
    "nq_ray/context.py": "tests/agents/test_seed_api.py",  # the seed's import names
    "nq_ray/agents/cli.py": "tests/agents/test_desk.py",  # the desk commands; and tests/test_cli_trade.py
    "nq_ray/agents/loop.py": "tests/test_cli_trade.py",  # `nq-ray trade` runs the loop
    "nq_ray/agents/models.py": "tests/agents/test_agents.py",  # and test_desk.py, test_service*.py
    "nq_ray/analysis/kernels.py": "tests/analysis/test_bench_analysis.py",  # and test_indicators.py
    "nq_ray/data/frames.py": "tests/data/test_loader.py",  # normalize_bars at the loader's door
    "nq_ray/data/intervals.py": "tests/data/test_loader.py",  # and test_synthetic.py, test_yahoo.py
    "nq_ray/data/sources/files.py": "tests/data/test_loader.py",  # sample, csv: and parquet: sources
    "nq_ray/domain/bars.py": "tests/data/test_loader.py",  # the bar schema every source is checked against
    "nq_ray/errors.py": "tests/serve/test_mcp_http.py",  # codes on the wire; and most packages' tests
    "nq_ray/llm/errors.py": "tests/llm/test_providers.py",  # and test_rules.py, test_structured.py
    "nq_ray/llm/prompts/engine.py": "tests/llm/test_prompts.py",
    "nq_ray/llm/protocol.py": "tests/llm/test_providers.py",  # and test_cache.py, test_structured.py
    "nq_ray/mcp_stdio.py": "tests/serve/test_e2e.py",  # MCP over stdio lists and calls every tool
    "nq_ray/serve/auth.py": "tests/serve/test_app.py",  # bearer token on REST and the WebSocket
    "nq_ray/serve/deployments.py": "tests/serve/test_mcp_http.py",  # and test_e2e.py on a real Serve app
    "nq_ray/serve/deps.py": "tests/serve/test_app.py",  # build_app wires it
    "nq_ray/serve/events.py": "tests/serve/test_app.py",  # the WebSocket event stream
    "nq_ray/serve/health.py": "tests/serve/test_app.py",  # /health, and test_e2e.py
    "nq_ray/serve/ui_app.py": "tests/ui/test_ui_app.py",  # and tests/deploy/test_serve_configs.py
    "nq_ray/store/desk.py": "tests/agents/test_desk_store.py",  # and test_replay.py
    "nq_ray/store/jobs.py": "tests/tools/test_jobs_store.py",
    "nq_ray/store/llm.py": "tests/llm/test_stored.py",
    "nq_ray/store/migrations/": "tests/store/test_db.py",  # Alembic scripts: the schema is migrated there
    "nq_ray/store/models.py": "tests/store/test_db.py",
    "nq_ray/store/records.py": "tests/store/test_repository.py",  # and tests/execution/test_journal.py
    "nq_ray/store/testing.py": "tests/agents/test_desk_store.py",  # the db_url fixture in tests/conftest.py
    "nq_ray/testing/asgi.py": "tests/serve/test_mcp_http.py",  # and tests/data/test_tradovate.py
    "nq_ray/testing/instance.py": "tests/serve/test_instances.py",  # and test_runtime.py: `nq-ray up` runs
    "nq_ray/runtime/sessions.py": "tests/runtime/test_cluster.py",  # a killed owner's Ray found, stopped
    "nq_ray/serve/instance.py": "tests/serve/test_runtime.py",  # ports, run dir and stale HAProxy of `up`
    "nq_ray/testing/multinode.py": "tests/deploy/test_multinode.py",
    "nq_ray/testing/vllm_cpu.py": "tests/llm/test_vllm_cpu.py",  # and test_serve_llm_cpu.py (live_llm)
    "nq_ray/tools/analysis.py": "tests/tools/test_registry.py",  # calculate_indicators, detect_patterns
    "nq_ray/tools/args.py": "tests/tools/test_registry.py",  # bars arguments and bad-argument errors
    "nq_ray/tools/backtesting.py": "tests/tools/test_backtesting_walkforward.py",  # and test_registry.py
    "nq_ray/tools/compute.py": "tests/tools/test_jobs.py",  # and test_jobs_store.py
    "nq_ray/tools/context.py": "tests/agents/test_pointintime.py",  # and tests/tools/conftest.py
    "nq_ray/tools/data.py": "tests/tools/test_registry.py",  # get_nq_price & co. and tests/tools/test_mcp.py
    "nq_ray/tools/risk.py": "tests/tools/test_catalog.py",  # calculate_var, assess_portfolio_risk
    "nq_ray/tools/wire.py": "tests/runtime/test_registry.py",  # and tests/serve/test_config_api.py
}


def _modules() -> list[str]:
    """Every module of nq_ray as a repo-relative path; package ``__init__.py`` files are the package's API
    and are covered by the tests of the package."""
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )


def _mirrors(module: str) -> list[Path]:
    """tests/<pkg>/test_<mod>.py, then the same name in each enclosing test folder up to tests/<top>."""
    parts = Path(module).with_suffix("").parts[1:]  # drop "nq_ray"
    name = f"test_{parts[-1]}.py"
    folders = parts[:-1]
    out = [TESTS.joinpath(*folders[:i], name) for i in range(len(folders), 0, -1)]
    return out or [TESTS / name]


def _allowed(module: str) -> str | None:
    for key, where in COVERED_ELSEWHERE.items():
        if module == key or (key.endswith("/") and module.startswith(key)):
            return where
    return None


def _importers(module: str) -> list[str]:
    """Test files that name the module's dotted path: candidates for the allow-list entry."""
    dotted = re.escape(Path(module).with_suffix("").as_posix().replace("/", "."))
    pattern = re.compile(rf"\b{dotted}\b")
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in TESTS.rglob("*.py")
        if p.name != "test_mirror.py" and pattern.search(p.read_text(encoding="utf-8"))
    )


def test_every_module_has_a_mirror_test_module_or_says_where_it_is_covered() -> None:
    missing = [m for m in _modules() if not any(p.exists() for p in _mirrors(m)) and _allowed(m) is None]

    lines = []
    for m in missing:
        found = _importers(m)
        where = found[0] if found else "tests/<pkg>/test_<module>.py"
        lines.append(
            f"  {m}: no {_mirrors(m)[0].relative_to(ROOT).as_posix()}. Write it, or add to COVERED_ELSEWHERE "
            f'in tests/test_mirror.py:\n      "{m}": "{where}",  # what there exercises it'
            + (f"\n    (test files importing it: {', '.join(found)})" if found else "")
        )
    assert not missing, "modules without a mirror test module:\n" + "\n".join(lines)


def test_the_allow_list_names_real_modules_without_a_mirror_and_real_test_files() -> None:
    modules = _modules()
    stale = []
    for key, where in COVERED_ELSEWHERE.items():
        covered = [m for m in modules if m == key or (key.endswith("/") and m.startswith(key))]
        if not covered:
            stale.append(f"  {key}: no such module any more; remove its line from COVERED_ELSEWHERE")
        elif not key.endswith("/") and any(p.exists() for p in _mirrors(key)):
            stale.append(f"  {key}: now has its mirror test module; remove its line from COVERED_ELSEWHERE")
        if not (ROOT / where).is_file():
            stale.append(f"  {key}: the covering test {where} does not exist; name the test that covers it")
    assert not stale, "tests/test_mirror.py COVERED_ELSEWHERE is out of date:\n" + "\n".join(stale)
