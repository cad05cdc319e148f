"""``run_challenge``: the tool, and the same as a job (the REST jobs API runs any registered tool)."""

from __future__ import annotations

import asyncio
import json

import pytest

from nq_ray.errors import InvalidArgumentError, NQRayError
from nq_ray.tools.jobs import JobManager
from tests.tools.conftest import VALID_CALLS

CALL = VALID_CALLS["run_challenge"]


async def test_the_tool_reports_the_outcome_every_rule_and_the_pass_probability(registry) -> None:
    out = await registry.call("run_challenge", CALL)

    json.dumps(out, allow_nan=False)
    assert out["pack"] == "topstep-50k" and out["outcome"] in ("passed", "failed", "in_progress")
    assert (out["failed"] is not None) == (out["outcome"] == "failed")
    assert {r["rule"] for r in out["rules"]} >= {"maximum_loss_limit", "daily_loss_limit", "profit_target"}
    pp = out["pass_probability"]
    assert pp["n_sims"] == 100 and pp["passed"] + pp["failed"] + pp["in_progress"] == 100
    assert pp["ci95"][0] <= pp["probability"] <= pp["ci95"][1]
    assert "RESULT:" in out["text"] and out["origin"]["source"]


async def test_the_same_call_twice_gives_the_same_report(registry) -> None:
    first = await registry.call("run_challenge", CALL)
    second = await registry.call("run_challenge", CALL)

    assert first == second  # seeded Monte Carlo, deterministic run


async def test_an_unknown_pack_names_the_known_ones(registry) -> None:
    with pytest.raises(NQRayError) as err:
        await registry.call("run_challenge", {**CALL, "pack": "no-such-firm"})

    assert "topstep-50k" in err.value.message


async def test_a_bad_pack_name_is_refused_at_the_door(registry) -> None:
    with pytest.raises(InvalidArgumentError):
        await registry.call("run_challenge", {**CALL, "pack": "../../etc/passwd"})


async def test_the_challenge_runs_as_a_job(registry) -> None:
    jobs = JobManager(registry)

    job = await jobs.submit("run_challenge", CALL)
    for _ in range(1200):
        state = await jobs.get(job.id)
        if state.done:
            break
        await asyncio.sleep(0.05)

    assert state.status == "succeeded", state.error
    assert state.result is not None and state.result["pack"] == "topstep-50k"
    assert state.progress == state.total == 1


# ---- the command line: `nq-ray challenge` (nq_ray/cli.py) runs the same report


def test_the_command_prints_the_report_and_the_same_as_json() -> None:
    from typer.testing import CliRunner

    from nq_ray.cli import app

    args = ["challenge", "--pack", "topstep-50k", "--strategy", "opening_range_breakout"]
    args += ["--costs", '{"stop_loss_ticks": 80, "take_profit_ticks": 160}', "--n-sims", "200"]
    text = CliRunner().invoke(app, args)
    raw = CliRunner().invoke(app, [*args, "--json"])

    assert text.exit_code == 0, text.output
    assert "RESULT:" in text.output and "pass probability:" in text.output
    out = json.loads(raw.output)
    assert out["pack"] == "topstep-50k" and out["pass_probability"]["n_sims"] == 200
    assert out["text"].splitlines()[2] in text.output  # the RESULT line


def test_the_command_wants_a_strategy_or_an_agent() -> None:
    from typer.testing import CliRunner

    from nq_ray.cli import app

    neither = CliRunner().invoke(app, ["challenge", "--pack", "topstep-50k"])
    bad_json = CliRunner().invoke(
        app, ["challenge", "--pack", "topstep-50k", "--strategy", "sma_cross", "--params", "{fast: 1"]
    )

    assert neither.exit_code == 2 and "error [invalid_argument]" in neither.output
    assert bad_json.exit_code == 2 and "--params is not valid JSON" in bad_json.output


SWEEP = {**VALID_CALLS["run_sweep"], "pack": "topstep-50k", "metric": "pass_probability", "top": 4}


async def test_a_sweep_under_a_pack_ranks_its_rows_by_pass_probability(registry) -> None:
    out = await registry.call("run_sweep", SWEEP)
    by_sharpe = await registry.call("run_sweep", {**SWEEP, "metric": "sharpe"})

    probs = [r["pass_probability"] for r in out["top"]]
    assert len(probs) == 4 and probs == sorted(probs, reverse=True)
    assert all(r["pass_ci_low"] <= r["pass_probability"] <= r["pass_ci_high"] for r in out["top"])
    assert out["best_params"] == {k: out["top"][0][k] for k in ("fast", "slow")}
    # ranked by Sharpe the rows carry the same seeded pass probabilities, in Sharpe's order
    sharpe = [r["sharpe"] for r in by_sharpe["top"]]
    assert sharpe == sorted(sharpe, reverse=True)
    same = {(r["fast"], r["slow"]): r["pass_probability"] for r in by_sharpe["top"]}
    assert same == {(r["fast"], r["slow"]): r["pass_probability"] for r in out["top"]}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"pack": None}, "needs a prop-firm pack"),
        ({"pack": "no-such-firm"}, "topstep-50k"),  # the known packs are listed
        ({"metric": "luck"}, "unknown metric"),
    ],
)
async def test_a_sweep_under_a_pack_refuses_bad_arguments(registry, args: dict, needle: str) -> None:
    with pytest.raises(NQRayError) as err:
        await registry.call("run_sweep", {**SWEEP, **args})

    assert needle in err.value.message
