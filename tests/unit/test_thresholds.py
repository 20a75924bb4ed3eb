"""Alert thresholds: domain.md's defaults, customer overrides, and the priority of a breach."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from cmdb.errors import InvalidInput
from incident.thresholds import (
    METRICS,
    AlertThresholds,
    Evaluation,
    evaluate,
    metric_named,
    read_duration,
    read_value,
    repeat_summary,
)

AT = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC)


def judge(metric: str, value: Any, duration_s: float = 0, sla: dict[str, Any] | None = None) -> Evaluation:
    thresholds = AlertThresholds.from_terms(sla)
    reading = read_value(METRICS[metric], value)
    return evaluate(thresholds[metric], reading, duration_s=duration_s, ci_name="web-01", observed_at=AT)


@pytest.mark.parametrize(
    ("metric", "value", "duration_s", "breached", "priority"),
    [
        # processor above 90 % for 5 minutes
        ("cpu_percent", 91, 300, True, "normal"),
        ("cpu_percent", 91, 299, False, None),
        ("cpu_percent", 90, 600, False, None),
        ("cpu_percent", 99.5, 0, False, None),
        # memory above 80 %
        ("memory_percent", 80.1, 0, True, "normal"),
        ("memory_percent", 80, 0, False, None),
        # system disk under 2 GB free
        ("disk_system_free_gb", 1.99, 0, True, "normal"),
        ("disk_system_free_gb", 2, 0, False, None),
        # data disk under 10 % free
        ("disk_data_free_percent", 9, 0, True, "normal"),
        ("disk_data_free_percent", 10, 0, False, None),
        # event log critical or warning (error between them)
        ("event_log", "critical", 0, True, "high"),
        ("event_log", "error", 0, True, "normal"),
        ("event_log", "Warning", 0, True, "low"),
        ("event_log", "information", 0, False, None),
        # backup failure
        ("backup", "failure", 0, True, "normal"),
        ("backup", "success", 0, False, None),
        ("backup", "warning", 0, False, None),
        # UPS critical or warning
        ("ups", "critical", 0, True, "high"),
        ("ups", "warning", 0, True, "normal"),
        ("ups", "ok", 0, False, None),
        # virus detected: any detection
        ("virus", True, 0, True, "high"),
        ("virus", "EICAR-Test-File", 0, True, "high"),
        ("virus", 3, 0, True, "high"),
        ("virus", False, 0, False, None),
        ("virus", "none", 0, False, None),
        ("virus", 0, 0, False, None),
        # firewall attack: any
        ("firewall_attack", "port scan from 203.0.113.9", 0, True, "high"),
        ("firewall_attack", {"source": "203.0.113.9"}, 0, True, "high"),
        ("firewall_attack", "", 0, False, None),
    ],
)
def test_default_thresholds_of_the_domain(
    metric: str, value: Any, duration_s: float, breached: bool, priority: str | None
) -> None:
    evaluation = judge(metric, value, duration_s)
    assert evaluation.breached is breached
    assert evaluation.priority == priority


def test_every_metric_of_the_api_is_known() -> None:
    assert set(METRICS) == {
        "cpu_percent",
        "memory_percent",
        "disk_system_free_gb",
        "disk_data_free_percent",
        "event_log",
        "backup",
        "ups",
        "virus",
        "firewall_attack",
    }


def test_customer_overrides_replace_the_defaults() -> None:
    sla = {
        "alert_thresholds": {
            "cpu_percent": {"above": 95, "for_s": 600, "priority": "high"},
            "event_log": {"levels": ["critical"], "priority": {"critical": "critical"}},
            "firewall_attack": {"enabled": False},
            "disk_system_free_gb": {"below": 5},
        }
    }
    assert judge("cpu_percent", 96, 600, sla) == judge("cpu_percent", 96, 600, sla)
    assert not judge("cpu_percent", 94, 900, sla).breached
    assert not judge("cpu_percent", 96, 599, sla).breached
    assert judge("cpu_percent", 96, 600, sla).priority == "high"
    assert judge("event_log", "critical", sla=sla).priority == "critical"
    assert not judge("event_log", "warning", sla=sla).breached
    assert not judge("firewall_attack", "syn flood", sla=sla).breached
    assert judge("disk_system_free_gb", 4, sla=sla).breached
    thresholds = AlertThresholds.from_terms(sla)
    assert thresholds["cpu_percent"].as_dict() == {
        "metric": "cpu_percent",
        "kind": "above",
        "above": 95,
        "for_s": 600,
        "priority": "high",
        "enabled": True,
        "source": "customer",
    }
    assert thresholds["memory_percent"].source == "default"


def test_a_partial_override_keeps_the_other_defaults() -> None:
    thresholds = AlertThresholds.from_terms({"alert_thresholds": {"cpu_percent": {"for_s": 60}}})
    cpu = thresholds["cpu_percent"]
    assert (cpu.limit, cpu.for_s, cpu.priority_for()) == (90, 60, "normal")


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ("strict", "sla.alert_thresholds"),
        ({"cpu": {"above": 95}}, "sla.alert_thresholds.cpu"),
        ({"cpu_percent": 95}, "sla.alert_thresholds.cpu_percent"),
        ({"cpu_percent": {"above": 150}}, "sla.alert_thresholds.cpu_percent.above"),
        ({"cpu_percent": {"above": "95"}}, "sla.alert_thresholds.cpu_percent.above"),
        ({"cpu_percent": {"below": 5}}, "sla.alert_thresholds.cpu_percent.below"),
        ({"cpu_percent": {"for_s": -1}}, "sla.alert_thresholds.cpu_percent.for_s"),
        ({"disk_system_free_gb": {"below": -1}}, "sla.alert_thresholds.disk_system_free_gb.below"),
        ({"ups": {"levels": ["on_fire"]}}, "sla.alert_thresholds.ups.levels"),
        ({"ups": {"levels": []}}, "sla.alert_thresholds.ups.levels"),
        ({"virus": {"priority": "urgent"}}, "sla.alert_thresholds.virus.priority"),
        ({"virus": {"priority": {"critical": "high"}}}, "sla.alert_thresholds.virus.priority"),
        ({"backup": {"enabled": "no"}}, "sla.alert_thresholds.backup.enabled"),
    ],
)
def test_bad_overrides_are_named(terms: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AlertThresholds.from_terms({"alert_thresholds": terms})
    assert field in [problem.field for problem in caught.value.problems]


def test_lenient_resolution_keeps_the_default_of_a_faulty_metric_only() -> None:
    thresholds, problems = AlertThresholds.resolve(
        {"alert_thresholds": {"cpu_percent": {"above": 150}, "memory_percent": {"above": 70}}}
    )
    assert [p.field for p in problems] == ["sla.alert_thresholds.cpu_percent.above"]
    assert thresholds["cpu_percent"].limit == 90 and thresholds["cpu_percent"].source == "default"
    assert thresholds["memory_percent"].limit == 70


def test_no_terms_mean_the_defaults() -> None:
    assert AlertThresholds.from_terms(None) == AlertThresholds.defaults()
    assert AlertThresholds.from_terms({"other": 1}) == AlertThresholds.defaults()


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("cpu_percent", "high"),
        ("cpu_percent", 101),
        ("cpu_percent", -1),
        ("cpu_percent", True),
        ("cpu_percent", float("nan")),
        ("disk_system_free_gb", -0.5),
        ("event_log", "fatal"),
        ("event_log", 3),
        ("ups", None),
        ("virus", None),
    ],
)
def test_bad_values_name_the_value(metric: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_value(METRICS[metric], value)
    assert [p.field for p in caught.value.problems] == ["value"]


def test_unknown_metric_and_bad_duration_are_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        metric_named("temperature")
    assert caught.value.problems[0].field == "metric"
    with pytest.raises(InvalidInput) as caught:
        read_duration(-5)
    assert caught.value.problems[0].field == "duration_s"
    assert read_duration(None) == 0


def test_title_and_symptoms_say_what_happened() -> None:
    thresholds = AlertThresholds.defaults()
    evaluation = evaluate(
        thresholds["cpu_percent"],
        read_value(METRICS["cpu_percent"], 97),
        duration_s=420,
        ci_name="web-01",
        observed_at=AT,
        message="sustained load",
    )
    assert evaluation.title == "Processor at 97 % for 7 min on web-01"
    assert "cpu_percent = 97 for 420 s, observed 2026-11-22 06:00:00 UTC" in evaluation.symptoms
    assert "above 90 % for at least 300 s" in evaluation.symptoms
    assert "Message: sustained load" in evaluation.symptoms
    virus = evaluate(
        thresholds["virus"], read_value(METRICS["virus"], "EICAR"), duration_s=0, ci_name="pc-7", observed_at=AT
    )
    assert virus.title == "Virus detected: EICAR on pc-7"
    summary = repeat_summary(read_value(METRICS["ups"], "critical"), 0, AT, "on battery")
    assert summary == "Repeat alert ups = critical at 2026-11-22 06:00:00 UTC: on battery"
