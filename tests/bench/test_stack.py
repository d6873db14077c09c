"""The benchmark helpers that decide what ``make bench`` reports: percentiles, goals, and the
merge into ``bench/results.json`` (a benchmark's new figures replace only its own)."""

from __future__ import annotations

import json
import math

import pytest

from bench import stack


def test_percentile_is_a_measured_value_by_nearest_rank():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert stack.percentile(values, 50) == 3.0
    assert stack.percentile(values, 99) == 5.0
    assert stack.percentile(values, 1) == 1.0
    assert math.isnan(stack.percentile([], 50))


@pytest.mark.parametrize(
    ("value", "op", "target", "holds"),
    [(25.0, "<=", 25, True), (25.1, "<=", 25, False), (0.5, ">=", 0.5, True),
     (0, "==", 0, True), (1, "==", 0, False), (math.nan, "<=", 100, False),
     (None, "<=", 100, False)],
)  # fmt: skip
def test_a_goal_holds_only_when_the_value_meets_it(value, op, target, holds):
    entry = stack.Entry("x.y", "label", value, "ms", op, target)
    assert entry.holds is holds
    assert entry.goal == f"{op} {target:g}"


def test_a_figure_without_goal_neither_holds_nor_fails():
    entry = stack.Entry("x.rate", "rate", 12.5, "/s")
    assert entry.holds is None and entry.goal is None


def test_merge_replaces_only_the_benchmarks_own_figures(tmp_path, monkeypatch):
    results = tmp_path / "results.json"
    monkeypatch.setattr(stack, "RESULTS", results)
    monkeypatch.setattr(stack, "REPO", tmp_path)
    stack.results_merge("one", [stack.Entry("one.a", "a", 1.0, "ms", "<=", 2),
                                stack.Entry("one.b", "b", 3, "x")])  # fmt: skip
    stack.results_merge("two", [stack.Entry("two.a", "a", 5.0, "ms", "<=", 2)])
    stack.results_merge("one", [stack.Entry("one.c", "c", 7, "x")])

    stored = json.loads(results.read_text())
    assert sorted(stored) == ["one.c", "two.a"]
    assert stored["two.a"]["holds"] is False and stored["two.a"]["goal"] == "<= 2"
    assert stored["one.c"]["machine"]["cpus"] >= 1
    for field in ("benchmark", "name", "value", "unit", "goal", "holds", "details",
                  "measured_at", "machine"):  # fmt: skip
        assert field in stored["one.c"]


def test_the_table_lists_every_figure_with_its_verdict(tmp_path, monkeypatch):
    monkeypatch.setattr(stack, "RESULTS", tmp_path / "results.json")
    monkeypatch.setattr(stack, "REPO", tmp_path)
    p99 = stack.Entry("lat.p99", "turn p99", 140.0, "ms", "<=", 100)
    p50 = stack.Entry("lat.p50", "turn p50", 20.0, "ms", "<=", 25)
    stack.results_merge("lat", [p99, p50])
    lines = stack.table().splitlines()
    p99 = next(line for line in lines if "turn p99" in line)
    p50 = next(line for line in lines if "turn p50" in line)
    assert "140.0 ms" in p99 and "<= 100" in p99 and " NO " in f"{p99} "
    assert "20.0 ms" in p50 and " yes " in f"{p50} "
    assert lines[-1].startswith("machine: ")
