"""`provisiond bench` still runs from a clean checkout: a quick run at one connection must
report every scenario of BENCHMARKS.md with every request answered 200. No figure is
asserted: speed is measured in BENCHMARKS.md, never in tests."""

import subprocess

from conftest import BIN, Postgres

SCENARIOS = {
    "ceiling: bare `{}`": 5000,
    "NotifyProvisionProductEngineWorkflowResult": 1000,
    "full cycle (provision → receive → notify → describe)": 500,
    "store alone: Notify-shaped write transactions (threads)": 2500,
    "DescribeProvisionedProduct, 1000 stored": 2000,
    "SearchProvisionedProducts first page, 1000 stored": 500,
    "SearchProvisionedProducts sorted by name, 1000 stored": 200,
}


def scenario_rows(stdout, connections):
    """The benchmark's table rows at `connections`, by scenario name."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[1] == str(connections):
            rows[cells[0]] = cells
    return rows


def assert_complete(rows, scenarios, stdout):
    for name, requests in scenarios.items():
        assert name in rows, f"{name} missing from:\n{stdout}"
        assert int(rows[name][2]) == requests, rows[name]
        assert rows[name][-1] == "0", f"{name} had answers other than 200: {rows[name]}"


def test_a_quick_benchmark_runs_every_scenario_without_errors():
    run = subprocess.run([str(BIN), "bench", "--quick", "--connections", "1"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert_complete(scenario_rows(run.stdout, 1), SCENARIOS, run.stdout)
    assert "Idle RSS" in run.stdout and "Notify / ceiling at 1 connections" in run.stdout


# Past one connection, SQLite, one replica and the pair take three turns each at Notify, and
# each row adds the turns up.
POSTGRES_SCENARIOS = {
    "SQLite, in the same turns: Notify": 3000,
    "PostgreSQL, 1 replica: Notify": 3000,
    "PostgreSQL, 1 replica: full cycle": 500,
    "PostgreSQL, 2 replicas: Notify (spread)": 3000,
    "PostgreSQL, 2 replicas: full cycle (each call to the next replica)": 500,
    "PostgreSQL alone: Notify-shaped transactions (threads)": 2500,
}


def test_the_postgresql_part_runs_on_a_scratch_database_and_drops_it(tmp_path):
    pg = Postgres(tmp_path / "pg")
    try:
        run = subprocess.run([str(BIN), "bench", "--quick", "--connections", "2",
                              "--database-url", pg.url],
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-2000:]
        assert_complete(scenario_rows(run.stdout, 2), POSTGRES_SCENARIOS, run.stdout)
        assert "PostgreSQL (1 replica) / SQLite Notify, in the same turns" in run.stdout
        assert "PostgreSQL alone / SQLite Notify in the same turns" in run.stdout
        assert "Scale model" in run.stdout
        assert "Each replica of the pair runs" in run.stdout
        assert "in 3 alternating rounds" in run.stdout and "median" in run.stdout
        # The scratch database is gone: only the server's own databases remain.
        listed = pg.psql("SELECT datname FROM pg_database ORDER BY 1")
        assert listed.split() == ["postgres", "template0", "template1"], listed
    finally:
        pg.run("stop")
