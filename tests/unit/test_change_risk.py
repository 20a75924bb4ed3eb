"""Impact class, committee requirement and risk score (change.risk)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from change.models import ChangeType, ImpactClass
from change.risk import (
    HIGH_RISK,
    MEDIUM_RISK,
    ImpactSummary,
    ImpactThresholds,
    Risk,
    assess,
    classify,
    committee_required,
    risk_level,
    summarize,
)
from cmdb.errors import InvalidInput
from cmdb.models import CIClass, Criticality

PROVIDER, ACME, GLOBEX = 1, 2, 3
LOW, MEDIUM, HIGH, CRITICAL = Criticality.LOW, Criticality.MEDIUM, Criticality.HIGH, Criticality.CRITICAL


def servers(count: int, tenant: int = ACME, criticality: Criticality = LOW, first: int = 1000):
    return {first + i: (CIClass.SERVER, criticality, tenant) for i in range(count)}


def summary_of(count: int, **kwargs) -> ImpactSummary:
    return summarize(servers(count, **kwargs), provider_tenant_id=PROVIDER)


# ---------------------------------------------------------------------------- summarize


def test_summarize_lists_cis_services_customers_and_criticality():
    impacted = {
        30: (CIClass.SERVICE, HIGH, ACME),
        10: (CIClass.SERVER, LOW, PROVIDER),
        20: (CIClass.APPLICATION, CRITICAL, ACME),
        25: (CIClass.SERVICE, CRITICAL, ACME),
        40: ("database", "medium", ACME),  # plain values are accepted too
    }
    s = summarize(impacted, provider_tenant_id=PROVIDER)
    assert s.cis == (10, 20, 25, 30, 40)
    assert s.services == (25, 30)
    assert s.customers == (PROVIDER, ACME)
    assert s.customer_count == 1  # the provider is not a customer
    assert s.max_criticality is CRITICAL
    assert (s.critical_count, s.high_count) == (2, 1)


def test_summarize_nothing():
    s = summarize({})
    assert (s.cis, s.services, s.customers, s.max_criticality, s.critical_count) == ((), (), (), LOW, 0)
    assert classify(s) is ImpactClass.LOW


# ---------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "low"), (9, "low"), (10, "medium"), (49, "medium"), (50, "high"), (500, "high")],
)
def test_default_thresholds_boundaries(count, expected):
    assert classify(summary_of(count)) is ImpactClass(expected)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "low"), (2, "low"), (3, "medium"), (4, "medium"), (5, "high")],
)
def test_customer_thresholds_boundaries(count, expected):
    thresholds = ImpactThresholds.from_terms({"impact_thresholds": {"medium": 3, "high": 5}})
    assert classify(summary_of(count), thresholds) is ImpactClass(expected)


def test_equal_thresholds_skip_medium():
    thresholds = ImpactThresholds(medium=4, high=4)
    assert classify(summary_of(3), thresholds) is ImpactClass.LOW
    assert classify(summary_of(4), thresholds) is ImpactClass.HIGH


def test_provider_ci_shared_by_two_customers_is_high():
    impacted = {
        1: (CIClass.STORAGE, LOW, PROVIDER),
        2: (CIClass.VIRTUAL_MACHINE, LOW, ACME),
        3: (CIClass.VIRTUAL_MACHINE, LOW, GLOBEX),
    }
    s = summarize(impacted, provider_tenant_id=PROVIDER)
    assert s.customer_count == 2
    assert classify(s) is ImpactClass.HIGH


def test_provider_ci_one_customer_relies_on_is_not_multi_customer():
    impacted = {1: (CIClass.STORAGE, LOW, PROVIDER), 2: (CIClass.VIRTUAL_MACHINE, LOW, ACME)}
    assert classify(summarize(impacted, provider_tenant_id=PROVIDER)) is ImpactClass.LOW
    # Without knowing the provider, every tenant counts as a customer.
    assert classify(summarize(impacted)) is ImpactClass.HIGH


def test_criticality_rules():
    assert classify(summary_of(1, criticality=CRITICAL)) is ImpactClass.HIGH
    relaxed = ImpactThresholds(critical_ci_is_high=False)
    assert classify(summary_of(1, criticality=CRITICAL), relaxed) is ImpactClass.MEDIUM
    assert classify(summary_of(1, criticality=HIGH)) is ImpactClass.MEDIUM
    assert classify(summary_of(1, criticality=MEDIUM)) is ImpactClass.LOW


def test_an_impacted_service_is_at_least_medium():
    s = summarize({1: (CIClass.SERVER, LOW, ACME), 2: (CIClass.SERVICE, LOW, ACME)})
    assert classify(s) is ImpactClass.MEDIUM


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(CIClass)), st.sampled_from(list(Criticality)), st.sampled_from([1, 2, 3])),
        max_size=80,
    ),
    st.integers(1, 60),
    st.integers(0, 60),
    st.booleans(),
)
def test_classify_follows_the_documented_rule(items, medium, extra, critical_is_high):
    thresholds = ImpactThresholds(medium, medium + extra, critical_is_high)
    s = summarize(dict(enumerate(items)), provider_tenant_id=PROVIDER)
    tenants = {t for _, _, t in items} - {PROVIDER}
    high = (
        len(items) >= thresholds.high
        or len(tenants) > 1
        or (critical_is_high and any(c is CRITICAL for _, c, _ in items))
    )
    medium_ = (
        len(items) >= thresholds.medium
        or any(c in (HIGH, CRITICAL) for _, c, _ in items)
        or any(k is CIClass.SERVICE for k, _, _ in items)
    )
    expected = ImpactClass.HIGH if high else ImpactClass.MEDIUM if medium_ else ImpactClass.LOW
    assert classify(s, thresholds) is expected


# ---------------------------------------------------------------------------- committee


@pytest.mark.parametrize("impact", list(ImpactClass))
def test_standard_change_never_needs_the_committee(impact):
    assert committee_required(impact, ChangeType.STANDARD) is False


@pytest.mark.parametrize(
    ("impact", "change_type", "expected"),
    [
        ("high", "normal", True),
        ("high", "emergency", True),
        ("medium", "normal", False),
        ("medium", "emergency", False),
        ("low", "normal", False),
        ("low", "emergency", False),
    ],
)
def test_committee_for_high_impact_only(impact, change_type, expected):
    assert committee_required(impact, change_type) is expected
    assert committee_required(ImpactClass(impact), ChangeType(change_type)) is expected


# ---------------------------------------------------------------------------- thresholds


def test_thresholds_defaults():
    assert ImpactThresholds.from_terms({}) == ImpactThresholds(10, 50, True)
    assert ImpactThresholds.from_terms(None) == ImpactThresholds()
    assert ImpactThresholds.from_terms({"other_term": 1}) == ImpactThresholds()
    assert ImpactThresholds.from_terms({"impact_thresholds": {"high": 80}}) == ImpactThresholds(10, 80)
    assert ImpactThresholds.from_terms({"impact_thresholds": {"critical_ci_is_high": False}}) == ImpactThresholds(
        critical_ci_is_high=False
    )


def fields_refused(terms) -> set[str]:
    with pytest.raises(InvalidInput) as caught:
        ImpactThresholds.from_terms({"impact_thresholds": terms})
    return {p.field for p in caught.value.problems}


@pytest.mark.parametrize(
    ("terms", "fields"),
    [
        ({"medium": 0}, {"sla.impact_thresholds.medium"}),
        ({"medium": -3, "high": 5}, {"sla.impact_thresholds.medium"}),
        ({"medium": 2.5}, {"sla.impact_thresholds.medium"}),
        ({"medium": True}, {"sla.impact_thresholds.medium"}),
        ({"high": "50"}, {"sla.impact_thresholds.high"}),
        ({"high": 0}, {"sla.impact_thresholds.high"}),
        ({"medium": 20, "high": 10}, {"sla.impact_thresholds.medium"}),
        ({"medium": 60}, {"sla.impact_thresholds.medium"}),  # more than the default high
        ({"critical_ci_is_high": "yes"}, {"sla.impact_thresholds.critical_ci_is_high"}),
        ({"low": 1}, {"sla.impact_thresholds.low"}),
        ({"medium": "x", "high": None}, {"sla.impact_thresholds.medium", "sla.impact_thresholds.high"}),
    ],
)
def test_bad_thresholds_refused_naming_the_field(terms, fields):
    assert fields_refused(terms) == fields


def test_thresholds_must_be_an_object():
    with pytest.raises(InvalidInput) as caught:
        ImpactThresholds.from_terms({"impact_thresholds": [10, 50]})
    assert [p.field for p in caught.value.problems] == ["sla.impact_thresholds"]


def test_thresholds_constructor_checks_too():
    with pytest.raises(ValueError, match="medium"):
        ImpactThresholds(medium=5, high=4)
    with pytest.raises(ValueError, match="high"):
        ImpactThresholds(medium=1, high=0)


# ---------------------------------------------------------------------------- risk


def test_factors_explain_the_score():
    s = summarize(
        {**servers(60, criticality=HIGH), 1: (CIClass.SERVICE, CRITICAL, ACME), 2: (CIClass.SERVICE, LOW, ACME)},
        provider_tenant_id=PROVIDER,
    )
    risk = assess(s, classify(s), ChangeType.NORMAL, timedelta(hours=30), failed_changes_on_cis=1)
    by_name = {f.name: f for f in risk.factors}
    assert set(by_name) == {"impact", "criticality", "lead_time", "failed_changes"}
    assert risk.score == sum(f.points for f in risk.factors) == 25 + 20 + 8 + 8
    assert risk.level == "high"
    assert by_name["impact"].detail == "The change reaches 62 CIs, 2 services among them: high impact."
    assert by_name["criticality"].detail == "1 impacted CI is business-critical."
    assert by_name["lead_time"].detail == "It starts in 30 hours: less than three days' notice to prepare."
    assert by_name["failed_changes"].detail == "1 earlier change on these CIs failed or was backed out."
    # Largest effect first.
    assert [f.points for f in risk.factors] == sorted((f.points for f in risk.factors), key=lambda p: -abs(p))
    assert all(f.detail.endswith(".") and not f.detail[0].islower() for f in risk.factors)


def test_failed_changes_and_incidents_in_plain_words():
    s = summary_of(3)
    risk = assess(s, classify(s), "normal", None, failed_changes_on_cis=3, incidents_on_cis=4)
    details = {f.name: f.detail for f in risk.factors}
    assert details["failed_changes"] == "3 earlier changes on these CIs failed or were backed out."
    assert details["incidents"] == "4 incidents on these CIs in the last 90 days."
    assert {f.name: f.points for f in risk.factors} == {"impact": 5, "failed_changes": 24, "incidents": 12}
    assert risk.score == 41 and risk.level == "medium"


def test_counts_are_capped_per_factor_and_score_at_100():
    s = summarize({**servers(100, criticality=CRITICAL), 5: (CIClass.SERVER, LOW, GLOBEX)}, provider_tenant_id=PROVIDER)
    risk = assess(s, classify(s), "emergency", timedelta(hours=-2), failed_changes_on_cis=50, incidents_on_cis=50)
    points = {f.name: f.points for f in risk.factors}
    assert points == {
        "impact": 25,
        "criticality": 20,
        "change_type": 15,
        "lead_time": 15,
        "failed_changes": 24,
        "incidents": 15,
    }
    assert risk.score == 100 and risk.level == "high"
    assert "across 2 customers" in next(f.detail for f in risk.factors if f.name == "impact")
    assert "in the past" in next(f.detail for f in risk.factors if f.name == "lead_time")


def test_standard_change_lowers_the_score_never_below_zero():
    s = summary_of(1)
    risk = assess(s, classify(s), ChangeType.STANDARD, timedelta(days=10))
    assert {f.name: f.points for f in risk.factors} == {"impact": 5, "change_type": -10}
    assert risk == Risk(0, "low", risk.factors)
    assert risk.factors[0].name == "change_type"  # the largest effect comes first


@pytest.mark.parametrize(
    ("lead", "points"),
    [(None, None), (timedelta(hours=2), 15), (timedelta(hours=23, minutes=59), 15), (timedelta(hours=24), 8),
     (timedelta(hours=71), 8), (timedelta(hours=72), None)],
)  # fmt: skip
def test_lead_time_factor(lead, points):
    s = summary_of(1)
    found = [f.points for f in assess(s, classify(s), "normal", lead).factors if f.name == "lead_time"]
    assert found == ([] if points is None else [points])


def test_levels():
    assert (risk_level(0), risk_level(MEDIUM_RISK - 1), risk_level(MEDIUM_RISK)) == ("low", "low", "medium")
    assert (risk_level(HIGH_RISK - 1), risk_level(HIGH_RISK), risk_level(100)) == ("medium", "high", "high")


def test_negative_counts_refused():
    with pytest.raises(ValueError):
        assess(summary_of(1), "low", "normal", failed_changes_on_cis=-1)


def test_as_dict():
    s = summary_of(1)
    data = assess(s, classify(s), "emergency").as_dict()
    assert data["score"] == 20 and data["level"] == "low"
    assert {f["name"] for f in data["factors"]} == {"impact", "change_type"}
