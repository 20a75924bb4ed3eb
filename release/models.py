"""Release management's vocabulary: the release, its test evidence, its deployments.

Pure Python: the standard library and :mod:`cmdb` vocabulary only, no framework, no database.

A release groups approved RFCs of one customer (domain, "Release and the patch urgency
schedule"). It is tested in a test environment that represents production CIs; each test has a
result and may reveal negative effects, which the release manager reviews (resolved, or accepted
for a critical patch with a recorded justification). The release manager's final review grants
the approval; deployment is recorded per CI, and a watch period follows in which incidents on
the released CIs and their dependents are linked to the release.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cmdb.errors import Conflict
from cmdb.models import Choice

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_WATCH_DAYS",
    "MET_STATES",
    "Deployment",
    "DeploymentOutcome",
    "EffectReview",
    "MissingEvidence",
    "Release",
    "ReleaseChoice",
    "ReleaseState",
    "ReleaseTest",
    "TestResult",
    "WatchMatch",
    "WatchPeriod",
]

#: The watch period after deployment when the customer's SLA names none (`release_watch_days`).
DEFAULT_WATCH_DAYS = 7


class ReleaseChoice(Choice):
    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())

    @property
    def colour(self) -> str:
        return _COLOURS.get(self, "grey")


class ReleaseState(ReleaseChoice):
    """See ``docs/releases.md`` for the diagram."""

    PLANNED = "planned"
    TESTING = "testing"
    PASSED = "passed"
    FAILED = "failed"
    APPROVED = "approved"
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    BACKED_OUT = "backed_out"
    CANCELLED = "cancelled"


#: States in which a release still holds its RFCs: an RFC may be in one such release only.
ACTIVE_STATES: frozenset[ReleaseState] = frozenset(ReleaseState) - {ReleaseState.BACKED_OUT, ReleaseState.CANCELLED}
#: States whose approval counts as "tested and approved for deployment" for patch urgency.
MET_STATES: frozenset[ReleaseState] = frozenset({ReleaseState.APPROVED, ReleaseState.DEPLOYING, ReleaseState.DEPLOYED})


class TestResult(ReleaseChoice):
    __test__ = False  # not a pytest test class

    PASSED = "passed"
    FAILED = "failed"


class EffectReview(ReleaseChoice):
    """The release manager's verdict on a test's negative effects."""

    RESOLVED = "resolved"
    ACCEPTED = "accepted"


class DeploymentOutcome(ReleaseChoice):
    DEPLOYED = "deployed"
    BACKED_OUT = "backed_out"


_LABELS: dict[StrEnum, str] = {
    ReleaseState.PASSED: "Tested: passed",
    ReleaseState.FAILED: "Tested: failed",
    ReleaseState.BACKED_OUT: "Backed out",
    DeploymentOutcome.BACKED_OUT: "Backed out",
}
_COLOURS: dict[StrEnum, str] = {
    ReleaseState.PLANNED: "grey",
    ReleaseState.TESTING: "blue",
    ReleaseState.PASSED: "green",
    ReleaseState.FAILED: "red",
    ReleaseState.APPROVED: "green",
    ReleaseState.DEPLOYING: "orange",
    ReleaseState.DEPLOYED: "green",
    ReleaseState.BACKED_OUT: "red",
    ReleaseState.CANCELLED: "grey",
    TestResult.PASSED: "green",
    TestResult.FAILED: "red",
    EffectReview.RESOLVED: "green",
    EffectReview.ACCEPTED: "orange",
    DeploymentOutcome.DEPLOYED: "green",
    DeploymentOutcome.BACKED_OUT: "red",
}


@dataclass(frozen=True)
class ReleaseTest:
    """One test run in the test environment, with its result and any negative effects found."""

    __test__ = False

    id: int
    release_id: int
    round: int
    name: str
    result: TestResult
    covers: tuple[str, ...]
    negative_effects: str
    recorded_by: int | None
    recorded_at: dt.datetime
    review: EffectReview | None = None
    review_justification: str = ""
    reviewed_by: int | None = None
    reviewed_at: dt.datetime | None = None

    @property
    def has_negative_effects(self) -> bool:
        return bool(self.negative_effects.strip())

    @property
    def needs_review(self) -> bool:
        return self.has_negative_effects and self.review is None


@dataclass(frozen=True)
class Deployment:
    """What a release installed on one CI (an update or a version), when, and how it ended."""

    id: int
    release_id: int
    tenant_id: int
    ci_id: int
    rfc_id: int | None
    version: str
    deployed_at: dt.datetime
    deployed_by: int | None
    outcome: DeploymentOutcome


@dataclass(frozen=True)
class Release:
    """A release of one customer. ``rfc_ids`` in the order they joined. ``represents`` lists the
    production CIs the test environment stands for. ``test_round`` counts testing rounds: a
    failed release goes back to testing in a new round, and only the current round's tests
    decide whether it passed (earlier rounds stay as evidence)."""

    id: int
    key: str
    tenant_id: int
    title: str
    state: ReleaseState
    created_at: dt.datetime
    updated_at: dt.datetime
    description: str = ""
    rfc_ids: tuple[int, ...] = ()
    test_environment_id: int | None = None
    represents: tuple[int, ...] = ()
    test_round: int = 1
    created_by: int | None = None
    approved_by: int | None = None
    approved_at: dt.datetime | None = None
    deploy_started_at: dt.datetime | None = None
    deployed_at: dt.datetime | None = None
    backed_out_at: dt.datetime | None = None
    backout_reason: str = ""
    watch_days: int = DEFAULT_WATCH_DAYS
    watch_until: dt.datetime | None = None
    version: int = 1

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    def watching_at(self, at: dt.datetime) -> bool:
        return (
            self.state is ReleaseState.DEPLOYED
            and self.deployed_at is not None
            and self.watch_until is not None
            and self.deployed_at <= at <= self.watch_until
        )


@dataclass(frozen=True)
class WatchMatch:
    """A deployed release in its watch period whose released CIs cover an incident's CIs:
    ``ci_ids`` are the incident CIs that matched (released, or depending on a released CI)."""

    release_id: int
    key: str
    ci_ids: tuple[int, ...]


@dataclass(frozen=True)
class WatchPeriod:
    """A release's watch period, with the released CIs and what depends on them."""

    release_id: int
    key: str
    tenant_id: int
    deployed_at: dt.datetime
    watch_until: dt.datetime
    ci_ids: tuple[int, ...]


class MissingEvidence(Conflict):
    """The release lacks what an action needs; ``missing`` names each item in words."""

    code = "missing_evidence"

    def __init__(self, detail: str, *, state: str, allowed: Sequence[str], missing: Sequence[str]) -> None:
        super().__init__(detail, state=state, allowed=allowed)
        self.missing = tuple(missing)
