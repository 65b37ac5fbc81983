"""pytest plugin: the ``latency_budget`` fixture, `rtu-control bench --assert` inside a test suite.

Installed with rtu-control (a ``pytest11`` entry point, so pytest loads it by itself)::

    def test_my_controller_is_fast_enough(latency_budget):
        latency_budget.check("tests/my_budgets.yaml")                  # fails the test with the table
        latency_budget.check("tests/my_budgets.yaml", "ticks=500")     # dotted overrides, as --set

``check`` measures and checks the budgets file as `rtu-control bench --assert` does (docs/latency_checks.md),
in the test's own process. A budget exceeded fails the test with the table as its message; a bad
budgets or baseline file raises ``ConfigError``, so the test errors. Without the entry point (e.g. run
from a source tree that is not installed) add ``pytest_plugins = ["launch.pytest_latency"]`` to the
root conftest.py. Nothing is imported from the controller until ``check`` runs.
"""
import pytest


class LatencyBudget:
    """What the ``latency_budget`` fixture gives a test. ``output`` (a pathlib.Path): where the JSON
    of each check goes unless the overrides name one, in the test's temporary folder."""

    def __init__(self, output_dir):
        self.output_dir = output_dir
        self.verdicts = []

    def check(self, budgets, *overrides, wrap_agent=None):
        """Measure and check ``budgets`` (a path) with dotted ``overrides`` ("ticks=500", ...); return
        the ``launch.bench_assert.Verdict`` when every budget holds, else fail the test with the table.
        ``wrap_agent``: see ``launch.latency_measure.measure``."""
        from launch.bench_assert import check_budgets

        overrides = list(overrides)
        if not any(o.split("=", 1)[0].strip() == "output" for o in overrides):
            overrides.append(f"output={self.output_dir / f'bench_assert_{len(self.verdicts)}.json'}")
        verdict = check_budgets(budgets, overrides, wrap_agent=wrap_agent, echo=lambda line: None)
        self.verdicts.append(verdict)
        if verdict.status != 0:
            failed = ", ".join(f"{r['figure']} {r['limit']}" for r in verdict.rows if r["result"] == "FAIL")
            pytest.fail(f"latency budget exceeded ({failed}) in {budgets}:\n{verdict.table}", pytrace=False)
        return verdict


@pytest.fixture
def latency_budget(tmp_path):
    """A ``LatencyBudget``: ``latency_budget.check("my_budgets.yaml")`` fails the test when the agent
    the file names exceeds a budget (docs/latency_checks.md)."""
    return LatencyBudget(tmp_path)
