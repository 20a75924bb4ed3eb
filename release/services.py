"""Release management use cases: group approved RFCs into a release, record the test evidence,
approve, deploy (recorded per CI), back out, and watch what happens after deployment.

Each action loads the release, computes what the pure workflow cannot know (its tests, the
requirements its RFCs carry, whether it holds a critical patch), calls
`release.workflow.transition`, and persists the result with a conditional update in one
transaction, appending the event to the release's history (and to its CIs' history where
something was installed or backed out).

RFC states follow the release (see docs/releases.md): deploying moves the release's scheduled
RFCs to implementing, completing the deployment completes them, backing out backs them out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from change import repository as change_repo
from change.models import RFC, RFCState, Urgency
from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.models import CI, Actor, CIClass, HistoryEntry, Role
from cmdb.notifications import NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService, page_bounds
from release import repository as repo
from release.models import (
    DEFAULT_WATCH_DAYS,
    Deployment,
    DeploymentOutcome,
    EffectReview,
    Release,
    ReleaseState,
    ReleaseTest,
    TestResult,
    WatchMatch,
    WatchPeriod,
)
from release.workflow import Evidence, allowed_actions, check, evidence, review_problem, transition

#: RFC states that may join a release (domain: "a release groups one or more approved RFCs").
JOINABLE_RFC_STATES = frozenset({RFCState.APPROVED, RFCState.SCHEDULED})
#: RFC states a release may still deploy.
DEPLOYABLE_RFC_STATES = frozenset({RFCState.APPROVED, RFCState.SCHEDULED, RFCState.IMPLEMENTING})
MAX_TEXT = 20_000

#: The history event each action records on the release.
EVENT_KINDS: Mapping[str, str] = {
    "add-rfc": "rfc_added",
    "remove-rfc": "rfc_removed",
    "set-test-environment": "test_environment_set",
    "start-testing": "testing_started",
    "record-test": "test_recorded",
    "conclude-testing": "testing_concluded",
    "review-effect": "effect_reviewed",
    "approve": "approved",
    "deploy": "deployment_started",
    "complete": "deployed",
    "back-out": "backed_out",
    "cancel": "cancelled",
}
#: The inputs each action takes besides `comment`.
INPUTS: Mapping[str, frozenset[str]] = {
    "add-rfc": frozenset({"rfc"}),
    "remove-rfc": frozenset({"rfc"}),
    "set-test-environment": frozenset({"test_environment", "represents"}),
    "start-testing": frozenset(),
    "record-test": frozenset({"name", "result", "covers", "negative_effects", "test_environment", "represents"}),
    "conclude-testing": frozenset(),
    "review-effect": frozenset({"test", "review", "justification"}),
    "approve": frozenset(),
    "deploy": frozenset(),
    "complete": frozenset({"deployments"}),
    "back-out": frozenset({"reason"}),
    "cancel": frozenset({"reason"}),
}


@dataclass(frozen=True)
class ReleaseView:
    """A release with everything its page and its JSON show."""

    release: Release
    customer_key: str
    rfcs: tuple[RFC, ...]
    tests: tuple[ReleaseTest, ...]
    evidence: Evidence
    deployments: tuple[Deployment, ...]
    allowed: tuple[str, ...]
    has_critical_patch: bool
    test_environment: CI | None
    represents: tuple[CI, ...]
    ci_names: Mapping[int, str]


@dataclass
class _Change:
    """What one action writes besides the release row, filled in by the action's handler."""

    data: dict[str, Any]
    comment: str = ""
    test: ReleaseTest | None = None
    review: tuple[int, EffectReview, str] | None = None
    link: int | None = None
    unlink: int | None = None
    deployments: list[Deployment] | None = None
    ci_history: list[Any] | None = None


def _text(data: Mapping[str, Any], name: str, problems: list[FieldProblem], *, required: bool = False) -> str:
    raw = data.get(name)
    if raw is None:
        if required:
            problems.append(FieldProblem(name, "is required"))
        return ""
    if not isinstance(raw, str):
        problems.append(FieldProblem(name, "must be text"))
        return ""
    if len(raw) > MAX_TEXT:
        problems.append(FieldProblem(name, f"must be at most {MAX_TEXT:,} characters"))
        return ""
    if required and not raw.strip():
        problems.append(FieldProblem(name, "is required"))
    return raw.strip()


def _ref(raw: Any) -> int | str | None:
    """An id or a key as clients send it: ints stay ints, digit strings become ints."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip():
        text = raw.strip()
        return int(text) if text.isdigit() else text
    return None


def _watch_days(sla: Mapping[str, Any]) -> int:
    raw = sla.get("release_watch_days", DEFAULT_WATCH_DAYS)
    try:
        days = int(raw)
    except (TypeError, ValueError):
        return DEFAULT_WATCH_DAYS
    return days if days >= 0 else DEFAULT_WATCH_DAYS


def _requirements(rfcs: Sequence[RFC]) -> dict[str, list[str]]:
    """The union of the RFCs' release requirements (same text once), with who asked for each."""
    found: dict[str, list[str]] = {}
    canonical: dict[str, str] = {}
    for rfc in rfcs:
        for text in rfc.release_requirements:
            if not str(text).strip():
                continue
            norm = " ".join(str(text).split()).casefold()
            key = canonical.setdefault(norm, str(text).strip())
            if rfc.key not in found.setdefault(key, []):
                found[key].append(rfc.key)
    return found


def _held_elsewhere(rfc_key: str, state: str) -> Conflict:
    """The unique index's refusal (see `repo.link_rfc`): another release took the RFC while
    this one was adding it, past the check both had made."""
    return Conflict(
        f"{rfc_key} was just added to another active release; an RFC can be in one active release only. "
        "Reload to see where it is.",
        state=state,
    )


class ReleaseService:
    def __init__(
        self, clock: Clock, cmdb: CMDBService, change: ChangeService, notifications: NotificationService
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.notifications = notifications

    def jobs(self) -> list[Job]:
        return []

    # --- reading ---------------------------------------------------------------------------

    async def _load(self, actor: Actor, ref: int | str) -> Release:
        found = await repo.get_release(actor.scope, ref)
        if found is None:
            raise NotFound("release", ref)
        return found

    async def _rfcs(self, release: Release) -> list[RFC]:
        scope = (await self._provider_actor()).scope
        rfcs: list[RFC] = []
        for rfc_id in release.rfc_ids:
            found = await change_repo.get_rfc(scope, rfc_id)
            if found is not None:
                rfcs.append(found[0])
        return rfcs

    async def _provider_actor(self) -> Actor:
        from cmdb.services import system_actor

        return system_actor(await self.cmdb.provider())

    async def get(self, actor: Actor, ref: int | str) -> ReleaseView:
        release = await self._load(actor, ref)
        return await self._view(actor, release)

    async def _view(self, actor: Actor, release: Release) -> ReleaseView:
        rfcs = await self._rfcs(release)
        tests = await repo.tests_of(release.id)
        deployments = await repo.deployments_of([release.id])
        ci_ids = {d.ci_id for d in deployments} | set(release.represents)
        if release.test_environment_id is not None:
            ci_ids.add(release.test_environment_id)
        for rfc in rfcs:
            ci_ids.update(rfc.ci_ids)
        # Unscoped read, then redacted: a customer sees the provider CIs theirs rely on unnamed.
        cis = {i: ci for i, ci in (await cmdb_repo.cis_by_ids(ci_ids)).items() if actor.scope.can_see(ci.tenant_id)}
        keys = await self.cmdb.customer_keys({release.tenant_id})
        return ReleaseView(
            release=release,
            customer_key=keys.get(release.tenant_id, str(release.tenant_id)),
            rfcs=tuple(rfcs),
            tests=tuple(tests),
            evidence=evidence(release, tests, _requirements(rfcs)),
            deployments=tuple(deployments),
            allowed=tuple(allowed_actions(release, actor)),
            has_critical_patch=any(r.urgency is Urgency.CRITICAL for r in rfcs),
            test_environment=cis.get(release.test_environment_id) if release.test_environment_id else None,
            represents=tuple(cis[i] for i in release.represents if i in cis),
            ci_names={ci_id: cis[ci_id].name if ci_id in cis else "(provider CI)" for ci_id in ci_ids},
        )

    async def list_releases(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        states: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Release], int]:
        limit, offset = page_bounds(limit, offset)
        unknown = [s for s in states or () if s not in ReleaseState.values()]
        if unknown:
            raise InvalidInput.field(
                "state", f"unknown states {', '.join(unknown)}; known: {', '.join(ReleaseState.values())}"
            )
        tenant_id = (await self.cmdb.get_customer(actor, customer)).id if customer is not None else None
        return await repo.list_releases(actor.scope, tenant_id=tenant_id, states=states, limit=limit, offset=offset)

    async def rfc_keys(self, rfc_ids: Sequence[int]) -> dict[int, str]:
        """Keys of RFCs already known to be visible (they belong to releases the caller read)."""
        return await repo.rfc_keys(rfc_ids)

    async def history(self, actor: Actor, ref: int | str) -> list[HistoryEntry]:
        release = await self._load(actor, ref)
        return await cmdb_repo.history_for_entity("release", release.id)

    async def deployments_on_ci(
        self, actor: Actor, ci_ref: int | str, *, limit: int = 50, offset: int = 0
    ) -> tuple[CI, list[Deployment], dict[int, str], int]:
        """What releases installed on a CI, newest first, with the releases' keys."""
        limit, offset = page_bounds(limit, offset)
        ci = await self.cmdb.get_ci(actor, ci_ref)
        rows, total = await repo.deployments_on_ci(ci.id, limit=limit, offset=offset)
        keys = await repo.release_keys(d.release_id for d in rows)
        return ci, rows, keys, total

    async def releases_of_rfcs(self, rfc_ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]:
        return await repo.releases_of_rfcs(rfc_ids)

    # --- creating --------------------------------------------------------------------------

    def _require_manager(self, actor: Actor) -> None:
        if not actor.is_provider_staff or not actor.has_any(Role.RELEASE_MANAGER, Role.ADMINISTRATOR):
            raise Forbidden("Only a release manager may create releases.")

    async def _joinable_rfc(
        self, actor: Actor, release_key: str, tenant_id: int, raw: Any, field: str, exclude_release: int | None
    ) -> RFC:
        ref = _ref(raw)
        if ref is None:
            raise InvalidInput.field(field, "must be an RFC id or key")
        found = await change_repo.get_rfc(actor.scope, ref.upper() if isinstance(ref, str) else ref)
        if found is None:
            raise InvalidInput.field(field, f"no RFC {raw} exists, or you may not see it")
        rfc = found[0]
        if rfc.tenant_id != tenant_id:
            keys = await self.cmdb.customer_keys({rfc.tenant_id, tenant_id})
            raise Conflict(
                f"{rfc.key} belongs to {keys.get(rfc.tenant_id, rfc.tenant_id)}; {release_key} is a release of "
                f"{keys.get(tenant_id, tenant_id)}: a release holds RFCs of its own customer only.",
                state=rfc.state.value,
            )
        if rfc.state not in JOINABLE_RFC_STATES:
            raise Conflict(
                f"{rfc.key} is {rfc.state.value}; only approved or scheduled RFCs can join a release.",
                state=rfc.state.value,
            )
        holding = await repo.active_releases_holding([rfc.id], excluding=exclude_release)
        if rfc.id in holding:
            raise Conflict(
                f"{rfc.key} is already in release {holding[rfc.id]}; an RFC can be in one active release only.",
                state=rfc.state.value,
            )
        return rfc

    async def _test_environment(
        self, tenant_id: int, env_raw: Any, represents_raw: Any, problems: list[FieldProblem]
    ) -> tuple[int | None, tuple[int, ...]]:
        scope = (await self._provider_actor()).scope
        env_id: int | None = None
        ref = _ref(env_raw)
        if ref is None:
            problems.append(FieldProblem("test_environment", "must be a CI id or name"))
        else:
            found = await cmdb_repo.find_ci(scope, ref, tenant_id=tenant_id)
            found = [ci for ci in found if ci.tenant_id == tenant_id]
            if not found:
                problems.append(FieldProblem("test_environment", f"no CI {env_raw} of this release's customer"))
            elif found[0].ci_class is not CIClass.TEST_ENVIRONMENT:
                problems.append(
                    FieldProblem(
                        "test_environment", f"{found[0].name} is a {found[0].ci_class.value}, not a test_environment"
                    )
                )
            else:
                env_id = found[0].id
        represents: list[int] = []
        if not isinstance(represents_raw, list) or not represents_raw:
            problems.append(FieldProblem("represents", "name the production CIs the test environment represents"))
        else:
            for raw in represents_raw:
                item = _ref(raw)
                cis = await cmdb_repo.find_ci(scope, item, tenant_id=tenant_id) if item is not None else []
                cis = [ci for ci in cis if ci.tenant_id == tenant_id]
                if not cis:
                    problems.append(FieldProblem("represents", f"no CI {raw} of this release's customer"))
                elif cis[0].id not in represents:
                    represents.append(cis[0].id)
        return env_id, tuple(represents)

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> Release:
        self._require_manager(actor)
        problems: list[FieldProblem] = []
        known = {"customer", "title", "description", "rfcs", "test_environment", "represents"}
        problems += [FieldProblem(name, "is not a field of a release") for name in sorted(set(data) - known)]
        title = _text(data, "title", problems, required=True)
        description = _text(data, "description", problems)
        customer_ref = _ref(data.get("customer"))
        if customer_ref is None:
            problems.append(FieldProblem("customer", "is required"))
            raise InvalidInput(problems)
        try:
            customer = await self.cmdb.get_customer(actor, customer_ref)
        except NotFound:
            problems.append(FieldProblem("customer", f"no customer {customer_ref}"))
            raise InvalidInput(problems) from None
        raw_rfcs = data.get("rfcs") or []
        if not isinstance(raw_rfcs, list):
            problems.append(FieldProblem("rfcs", "must be a list of RFC ids or keys"))
            raw_rfcs = []
        env_id: int | None = None
        represents: tuple[int, ...] = ()
        if data.get("test_environment") is not None:
            env_id, represents = await self._test_environment(
                customer.id, data["test_environment"], data.get("represents"), problems
            )
        if problems:
            raise InvalidInput(problems)
        now = self.clock.now()
        async with atomic(repo.engine()):
            rfcs: list[RFC] = []
            for raw in raw_rfcs:
                rfc = await self._joinable_rfc(actor, "the new release", customer.id, raw, "rfcs", None)
                if rfc.id not in {r.id for r in rfcs}:
                    rfcs.append(rfc)
            number = await cmdb_repo.next_in_sequence(f"REL-{now.year}")
            key = f"REL-{now.year}-{number:04d}"
            release = Release(
                id=0,
                key=key,
                tenant_id=customer.id,
                title=title,
                state=ReleaseState.PLANNED,
                created_at=now,
                updated_at=now,
                description=description,
                rfc_ids=tuple(r.id for r in rfcs),
                test_environment_id=env_id,
                represents=represents,
                created_by=actor.person_id,
                watch_days=_watch_days(customer.sla),
            )
            try:
                release = replace(release, id=await repo.insert_release(release, key))
            except repo.RFCInActiveRelease as error:
                held = next((r for r in rfcs if r.id == error.rfc_id), None)
                raise _held_elsewhere(held.key if held else str(error.rfc_id), "planned") from error
            await self._history(
                release,
                actor,
                "created",
                {"title": title, "rfcs": [r.key for r in rfcs], "state": release.state.value},
                now,
            )
        return release

    # --- acting ----------------------------------------------------------------------------

    async def act(
        self,
        actor: Actor,
        ref: int | str,
        action: str,
        data: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Release:
        release = await self._load(actor, ref)
        if expected_version is not None and expected_version != release.version:
            raise StaleVersion("Release", release.key, release.version)
        check(release, action, actor)
        accepted = INPUTS[action] | {"comment"}
        unknown = sorted(set(data) - accepted)
        if unknown:
            raise InvalidInput([FieldProblem(name, f"is not an input of {action}") for name in unknown])
        problems: list[FieldProblem] = []
        comment = _text(data, "comment", problems)
        if problems:
            raise InvalidInput(problems)
        now = self.clock.now()
        async with atomic(repo.engine()):
            handler = getattr(self, "_" + action.replace("-", "_"))
            new, change = await handler(actor, release, data, now)
            change.comment = comment
            if not await repo.update_release(new, release.version):
                current = await repo.current_version(release.id)
                version, state = current if current else (release.version, release.state.value)
                raise Conflict(
                    f"{release.key} changed while you were acting (now {state}, version {version}); reload it.",
                    state=state,
                    allowed=[],
                )
            await self._write(actor, new, change, now)
            after = {**change.data, "state": new.state.value}
            await self._history(new, actor, EVENT_KINDS[action], after, now, comment)
            if change.ci_history:
                await cmdb_repo.append_history(change.ci_history)
            await self._couple_rfcs(actor, release, new, action, change)
        return new

    async def _write(self, actor: Actor, new: Release, change: _Change, now: dt.datetime) -> None:
        if change.link is not None:
            try:
                await repo.link_rfc(new.id, change.link, now)
            except repo.RFCInActiveRelease as error:
                raise _held_elsewhere(str(change.data.get("rfc", change.link)), new.state.value) from error
        if change.unlink is not None:
            await repo.unlink_rfc(new.id, change.unlink)
        if change.test is not None:
            test_id = await repo.insert_test(change.test)
            change.data["test"] = test_id
        if change.review is not None:
            test_id, review, justification = change.review
            await repo.review_test(test_id, review, justification, actor.person_id, now)
        if change.deployments:
            await repo.insert_deployments(change.deployments)

    async def _history(
        self,
        release: Release,
        actor: Actor,
        kind: str,
        after: Mapping[str, Any],
        at: dt.datetime,
        comment: str = "",
    ) -> None:
        await cmdb_repo.append_history(
            [
                cmdb_repo.history_row(
                    tenant_id=release.tenant_id,
                    entity="release",
                    entity_id=release.id,
                    action=kind,
                    actor_id=actor.person_id,
                    actor_name=actor.username,
                    at=at,
                    after=after,
                    comment=comment,
                )
            ]
        )

    # Each handler parses its inputs, checks what the record and its RFCs allow, and returns the
    # new release plus what to write; `act` persists both under the version guard.

    async def _add_rfc(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        if data.get("rfc") is None:
            raise InvalidInput.field("rfc", "is required")
        rfc = await self._joinable_rfc(actor, release.key, release.tenant_id, data["rfc"], "rfc", release.id)
        if rfc.id in release.rfc_ids:
            raise Conflict(f"{rfc.key} is already in {release.key}.", state=release.state.value)
        new, data_out = transition(release, "add-rfc", actor, now)
        return replace(new, rfc_ids=(*release.rfc_ids, rfc.id)), _Change({**data_out, "rfc": rfc.key}, link=rfc.id)

    async def _remove_rfc(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        ref = _ref(data.get("rfc"))
        if ref is None:
            raise InvalidInput.field("rfc", "is required: an RFC id or key")
        rfcs = await self._rfcs(release)
        match = next((r for r in rfcs if r.id == ref or r.key == str(ref).upper()), None)
        if match is None:
            raise InvalidInput.field("rfc", f"{ref} is not in {release.key}")
        new, data_out = transition(release, "remove-rfc", actor, now)
        ids = tuple(i for i in release.rfc_ids if i != match.id)
        return replace(new, rfc_ids=ids), _Change({**data_out, "rfc": match.key}, unlink=match.id)

    async def _set_test_environment(
        self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime
    ) -> Any:
        problems: list[FieldProblem] = []
        env_id, represents = await self._test_environment(
            release.tenant_id, data.get("test_environment"), data.get("represents"), problems
        )
        if problems:
            raise InvalidInput(problems)
        new, data_out = transition(release, "set-test-environment", actor, now)
        new = replace(new, test_environment_id=env_id, represents=represents)
        return new, _Change({**data_out, "test_environment": env_id, "represents": list(represents)})

    async def _start_testing(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        new, data_out = transition(release, "start-testing", actor, now)
        return new, _Change(data_out)

    async def _record_test(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        problems: list[FieldProblem] = []
        name = _text(data, "name", problems, required=True)
        result: TestResult | None = None
        raw_result = data.get("result")
        try:
            result = TestResult(str(raw_result))
        except ValueError:
            problems.append(FieldProblem("result", "is required: passed or failed"))
        covers_raw = data.get("covers") or []
        if isinstance(covers_raw, str):
            covers_raw = [covers_raw]
        if not isinstance(covers_raw, list) or not all(isinstance(c, str) for c in covers_raw):
            problems.append(FieldProblem("covers", "must be a list of requirement texts"))
            covers_raw = []
        effects = _text(data, "negative_effects", problems)
        env_id, represents = release.test_environment_id, release.represents
        if data.get("test_environment") is not None:
            env_id, represents = await self._test_environment(
                release.tenant_id, data["test_environment"], data.get("represents"), problems
            )
        if problems or result is None:
            raise InvalidInput(problems)
        base = replace(release, test_environment_id=env_id, represents=represents)
        test = ReleaseTest(
            id=0,
            release_id=release.id,
            round=release.test_round,
            name=name,
            result=result,
            covers=tuple(c.strip() for c in covers_raw if c.strip()),
            negative_effects=effects,
            recorded_by=actor.person_id,
            recorded_at=now,
        )
        tests = [*await repo.tests_of(release.id), test]
        new, data_out = transition(base, "record-test", actor, now, tests=tests)
        summary = {"name": name, "result": result.value, "covers": list(test.covers), "negative_effects": effects}
        return new, _Change({**data_out, **summary}, test=test)

    async def _conclude_testing(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        tests = await repo.tests_of(release.id)
        new, data_out = transition(release, "conclude-testing", actor, now, tests=tests)
        return new, _Change(data_out)

    async def _review_effect(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        problems: list[FieldProblem] = []
        test_ref = _ref(data.get("test"))
        review: EffectReview | None = None
        try:
            review = EffectReview(str(data.get("review")))
        except ValueError:
            problems.append(FieldProblem("review", "is required: resolved or accepted"))
        justification = _text(data, "justification", problems)
        tests = await repo.tests_of(release.id)
        test = next((t for t in tests if t.id == test_ref), None)
        if test is None:
            problems.append(FieldProblem("test", f"no test {data.get('test')} in {release.key}"))
        if problems or test is None or review is None:
            raise InvalidInput(problems)
        rfcs = await self._rfcs(release)
        review_problem(test, review, justification, any(r.urgency is Urgency.CRITICAL for r in rfcs), release)
        new, data_out = transition(release, "review-effect", actor, now)
        out = {**data_out, "test": test.id, "test_name": test.name, "review": review.value}
        if justification:
            out["justification"] = justification
        return new, _Change(out, review=(test.id, review, justification))

    async def _approve(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        rfcs = await self._rfcs(release)
        tests = await repo.tests_of(release.id)
        new, data_out = transition(release, "approve", actor, now, tests=tests, requirements=_requirements(rfcs))
        return new, _Change({**data_out, "rfcs": [r.key for r in rfcs]})

    async def _deploy(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        rfcs = await self._rfcs(release)
        gone = [f"{r.key} is {r.state.value}" for r in rfcs if r.state not in DEPLOYABLE_RFC_STATES]
        if gone:
            raise Conflict(
                f"Cannot deploy {release.key}: " + "; ".join(gone) + ". Only approved or scheduled RFCs deploy; "
                "remove them from a new release instead.",
                state=release.state.value,
                allowed=allowed_actions(release, actor),
            )
        new, data_out = transition(release, "deploy", actor, now)
        return new, _Change({**data_out, "rfcs": [r.key for r in rfcs]})

    async def _complete(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        rfcs = await self._rfcs(release)
        rows = await self._deployment_rows(release, rfcs, data.get("deployments"), actor, now)
        customer = (await cmdb_repo.customers_by_ids([release.tenant_id]))[release.tenant_id]
        new, data_out = transition(release, "complete", actor, now, watch_days=_watch_days(customer.sla))
        keys = {r.id: r.key for r in rfcs}
        history = [
            cmdb_repo.history_row(
                tenant_id=row.tenant_id,
                entity="ci",
                entity_id=row.ci_id,
                ci_id=row.ci_id,
                action="deployed",
                actor_id=actor.person_id,
                actor_name=actor.username,
                at=now,
                after={"version": row.version, "release": release.key},
                rfc=keys.get(row.rfc_id) if row.rfc_id else None,
            )
            for row in rows
        ]
        summary = [{"ci": r.ci_id, "version": r.version, "rfc": keys.get(r.rfc_id or 0)} for r in rows]
        return new, _Change({**data_out, "deployments": summary}, deployments=rows, ci_history=history)

    async def _deployment_rows(
        self, release: Release, rfcs: Sequence[RFC], raw: Any, actor: Actor, now: dt.datetime
    ) -> list[Deployment]:
        def row(ci: CI, version: str, rfc_id: int | None) -> Deployment:
            return Deployment(
                id=0,
                release_id=release.id,
                tenant_id=ci.tenant_id,
                ci_id=ci.id,
                rfc_id=rfc_id,
                version=version,
                deployed_at=now,
                deployed_by=actor.person_id,
                outcome=DeploymentOutcome.DEPLOYED,
            )

        if raw is None:
            # By default every CI of every RFC gets the RFC's patch (its description, else its title).
            cis = await cmdb_repo.cis_by_ids({ci for rfc in rfcs for ci in rfc.ci_ids})
            return [
                row(cis[ci_id], (rfc.patch_description.strip() or rfc.title)[:300], rfc.id)
                for rfc in rfcs
                for ci_id in rfc.ci_ids
                if ci_id in cis
            ]
        if not isinstance(raw, list) or not raw:
            raise InvalidInput.field(
                "deployments", 'must be a list of {"ci", "version", "rfc"} (omit it for the default)'
            )
        problems: list[FieldProblem] = []
        rows: list[Deployment] = []
        scope = (await self._provider_actor()).scope
        for index, item in enumerate(raw):
            where = f"deployments[{index}]"
            if not isinstance(item, Mapping):
                problems.append(FieldProblem(where, 'must be an object {"ci", "version", "rfc"}'))
                continue
            version = item.get("version")
            if not isinstance(version, str) or not version.strip() or len(version) > 300:
                problems.append(FieldProblem(f"{where}.version", "is required: the update or version installed"))
                version = ""
            ci_ref = _ref(item.get("ci"))
            found = await cmdb_repo.find_ci(scope, ci_ref, tenant_id=release.tenant_id) if ci_ref is not None else []
            found = [ci for ci in found if ci.tenant_id == release.tenant_id]
            if not found:
                problems.append(FieldProblem(f"{where}.ci", f"no CI {item.get('ci')} of this release's customer"))
            rfc_id: int | None = None
            if item.get("rfc") is not None:
                rfc_ref = _ref(item["rfc"])
                match = next((r for r in rfcs if r.id == rfc_ref or r.key == str(rfc_ref).upper()), None)
                if match is None:
                    problems.append(FieldProblem(f"{where}.rfc", f"{item['rfc']} is not in {release.key}"))
                else:
                    rfc_id = match.id
            if found and version:
                rows.append(row(found[0], version.strip(), rfc_id))
        if problems:
            raise InvalidInput(problems)
        return rows

    async def _back_out(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        problems: list[FieldProblem] = []
        reason = _text(data, "reason", problems, required=True)
        if problems:
            raise InvalidInput(problems)
        rfcs = await self._rfcs(release)
        new, data_out = transition(release, "back-out", actor, now, reason=reason)
        plans = {r.key: r.backout_plan for r in rfcs}
        deployed = [d for d in await repo.deployments_of([release.id]) if d.outcome is DeploymentOutcome.DEPLOYED]
        keys = {r.id: r.key for r in rfcs}
        history = [
            cmdb_repo.history_row(
                tenant_id=d.tenant_id,
                entity="ci",
                entity_id=d.ci_id,
                ci_id=d.ci_id,
                action="backed_out",
                actor_id=actor.person_id,
                actor_name=actor.username,
                at=now,
                before={"version": d.version, "release": release.key},
                after={"release": release.key, "reason": reason},
                rfc=keys.get(d.rfc_id) if d.rfc_id else None,
            )
            for d in deployed
        ]
        change = _Change({**data_out, "backout_plans": plans, "cis": [d.ci_id for d in deployed]}, ci_history=history)
        return new, change

    async def _cancel(self, actor: Actor, release: Release, data: Mapping[str, Any], now: dt.datetime) -> Any:
        problems: list[FieldProblem] = []
        reason = _text(data, "reason", problems)
        if problems:
            raise InvalidInput(problems)
        new, data_out = transition(release, "cancel", actor, now)
        return new, _Change({**data_out, **({"reason": reason} if reason else {})})

    async def _couple_rfcs(self, actor: Actor, old: Release, new: Release, action: str, change: _Change) -> None:
        """Move the release's RFCs along with it, inside the same transaction: deploy starts the
        scheduled ones, complete completes what is implementing, back-out backs it out. Done as
        the acting release manager (administrators act with the release manager's role here)."""
        if action == "back-out":
            await repo.set_deployment_outcome(new.id, DeploymentOutcome.BACKED_OUT)
        steps = {
            "deploy": (RFCState.SCHEDULED, "implement"),
            "complete": (RFCState.IMPLEMENTING, "complete"),
            "back-out": (RFCState.IMPLEMENTING, "back-out"),
        }
        if action not in steps:
            return
        state, rfc_action = steps[action]
        acting = replace(actor, roles=actor.roles | {Role.RELEASE_MANAGER})
        for rfc in await self._rfcs(new):
            if rfc.state is not state:
                continue
            params: dict[str, Any] = {}
            if rfc_action == "back-out":
                params["comment"] = f"{new.key} backed out: {new.backout_reason}"
            try:
                await self.change.act(acting, rfc.id, rfc_action, params)
            except Conflict as exc:
                allowed = allowed_actions(old, actor)
                detail = f"Cannot {action} {old.key}: {exc.detail}"
                raise Conflict(detail, state=old.state.value, allowed=allowed) from exc
            change.data.setdefault("rfc_states", {})[rfc.key] = {
                "implement": RFCState.IMPLEMENTING,
                "complete": RFCState.COMPLETED,
                "back-out": RFCState.BACKED_OUT,
            }[rfc_action].value

    # --- the watch period ------------------------------------------------------------------

    async def _released_cis(self, releases: Sequence[Release]) -> dict[int, set[int]]:
        ids = [r.id for r in releases]
        found = await repo.released_ci_ids(ids)
        return {release_id: found.get(release_id, set()) for release_id in ids}

    async def watching(self, tenant_id: int, ci_ids: Sequence[int], at: dt.datetime) -> list[WatchMatch]:
        """Deployed releases of the tenant in their watch period at `at` whose released CIs, or
        what depends on them, include any of `ci_ids` (an incident's CIs)."""
        wanted = set(ci_ids)
        if not wanted:
            return []
        releases = [r for r in await repo.deployed_releases(tenant_id, since=at, until=at) if r.watching_at(at)]
        if not releases:
            return []
        released = await self._released_cis(releases)
        index = await self.cmdb.index()
        matches: list[WatchMatch] = []
        for release in releases:
            roots = [ci for ci in released[release.id] if index.has_node(ci)]
            covered = set(index.impact_many(roots, "down")) if roots else set()
            covered |= released[release.id]
            hit = tuple(sorted(wanted & covered))
            if hit:
                matches.append(WatchMatch(release.id, release.key, hit))
        return matches

    async def watch_periods(self, tenant_id: int | None, since: dt.datetime, until: dt.datetime) -> list[WatchPeriod]:
        """Watch periods overlapping [since, until], with the released CIs and their dependents."""
        releases = [
            r
            for r in await repo.deployed_releases(tenant_id, since=since, until=until)
            if r.deployed_at is not None and r.watch_until is not None
        ]
        if not releases:
            return []
        released = await self._released_cis(releases)
        index = await self.cmdb.index()
        periods: list[WatchPeriod] = []
        for release in releases:
            roots = [ci for ci in released[release.id] if index.has_node(ci)]
            covered = (set(index.impact_many(roots, "down")) if roots else set()) | released[release.id]
            assert release.deployed_at is not None and release.watch_until is not None
            periods.append(
                WatchPeriod(
                    release.id,
                    release.key,
                    release.tenant_id,
                    release.deployed_at,
                    release.watch_until,
                    tuple(sorted(covered)),
                )
            )
        return periods


__all__ = ["ReleaseService", "ReleaseView"]
