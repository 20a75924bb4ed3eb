"""Monitoring alerts into incidents (domain.md, "Incident"; docs/alerts.md).

Every alert is stored. One that breaches its customer's threshold opens an incident on its CI,
with the priority the threshold gives; a repeat on the same CI and metric joins the incident
that alert opened while it is still open. Exactly one incident per (CI, metric) however many
identical alerts arrive at once: the alert_open row of that pair is the claim (see
`alerts_repository.claim_open`), taken inside the same transaction that opens the incident.

Floods are the normal case, so an alert costs one short transaction and no graph work: the CI
lookup and the customer's thresholds are remembered for a few seconds per process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cmdb import repository as cmdb_repo
from cmdb.db import atomic
from cmdb.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from cmdb.models import Actor, Role, Scope
from cmdb.services import Clock, CMDBService, require
from incident import alerts_repository as repo
from incident.services import IncidentService
from incident.thresholds import (
    AlertThresholds,
    Metric,
    Reading,
    Threshold,
    evaluate,
    metric_named,
    read_duration,
    read_value,
    repeat_summary,
)

# A customer's changed thresholds reach every process within this long.
CACHE_SECONDS = 5.0
# A CI renamed (or retired) reaches alert ingestion within this long. Monitoring names the same
# CIs again and again; a CI's id and customer never change.
CI_CACHE_SECONDS = 30.0
# Monitoring clocks drift; an alert observed a little in the future is still believed.
FUTURE_SKEW = dt.timedelta(minutes=5)
# Repeats of an alert go on the incident's timeline at most this often (see _note_repeat).
REPEAT_NOTE = dt.timedelta(seconds=60)
MAX_BATCH = 1000
# Alerts one group commit takes at most; the rest wait for the next.
MAX_GROUP = 200
MAX_MESSAGE = 2000
POSTERS = (Role.ENGINEER, Role.ADMINISTRATOR, Role.SERVICE_MANAGER)
FIELDS = frozenset({"ci", "customer", "metric", "value", "observed_at", "duration_s", "message"})


class AlertIncidents(Protocol):
    """What alert ingestion needs of incident management (interfaces.md)."""

    async def open_from_alert(
        self, *, tenant_id: int, ci_id: int, priority: str, title: str, symptoms: str, observed_at: dt.datetime
    ) -> Any: ...

    async def record_alert_repeat(self, incident_id: int, *, summary: str, observed_at: dt.datetime) -> None: ...


@dataclass(frozen=True)
class CIRef:
    id: int
    tenant_id: int
    name: str


@dataclass(frozen=True)
class AlertInput:
    """One validated alert, its CI found."""

    ci: CIRef
    metric: Metric
    reading: Reading
    duration_s: float
    observed_at: dt.datetime
    message: str


@dataclass(frozen=True)
class AlertResult:
    alert_id: int
    ci: CIRef
    breached: bool
    outcome: str  # ignored | opened | joined
    incident_id: int | None
    incident_key: str | None
    priority: str | None
    threshold: Threshold
    threshold_problems: tuple[FieldProblem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        threshold = self.threshold.as_dict()
        if self.threshold_problems:
            threshold["problems"] = [problem.as_dict() for problem in self.threshold_problems]
        return {
            "breached": self.breached,
            "incident": {"id": self.incident_id, "key": self.incident_key} if self.incident_id is not None else None,
            "outcome": self.outcome,
            "alert": self.alert_id,
            "priority": self.priority,
            "ci": self.ci.id,
            "threshold": threshold,
        }


@dataclass(frozen=True)
class BatchItem:
    """One entry of a batch: its result, or why it was refused (nothing stored for it)."""

    index: int
    result: AlertResult | None = None
    error: InvalidInput | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.result is not None:
            return {"index": self.index, **self.result.as_dict()}
        assert self.error is not None
        return {
            "index": self.index,
            "error": self.error.code,
            "detail": self.error.detail,
            "fields": [problem.as_dict() for problem in self.error.problems],
        }


Thresholds = tuple[AlertThresholds, list[FieldProblem]]
Judged = tuple[AlertInput, Thresholds]


class _Group:
    """Alerts of one event loop waiting for the next group commit."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = asyncio.Lock()
        self.pending: list[tuple[Judged, asyncio.Future[AlertResult]]] = []


def _settle(
    future: asyncio.Future[AlertResult], *, result: AlertResult | None = None, error: BaseException | None = None
) -> None:
    if future.done():  # the caller went away (a dropped connection cancels its request)
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)


class AlertService:
    def __init__(self, clock: Clock, cmdb: CMDBService, incidents: IncidentService) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.incidents: AlertIncidents = incidents
        self._ci_ids: dict[int, tuple[float, CIRef]] = {}
        self._ci_names: dict[tuple[str, int | None], tuple[float, list[CIRef]]] = {}
        self._customers: dict[str, tuple[float, int]] = {}
        self._thresholds: dict[int, tuple[float, AlertThresholds, list[FieldProblem]]] = {}
        self._provider_id: int | None = None
        self._groups: dict[int, _Group] = {}

    # ------------------------------------------------------------------------- receiving

    async def receive(self, actor: Actor, data: Any) -> AlertResult:
        """One alert: stored, and an incident opened or joined when it breaches.
        InvalidInput (422) names the field when the CI, metric or value is wrong; nothing is stored."""
        self._check_poster(actor)
        item = await self._parse(data)
        return await self._submit(item, await self._tenant_thresholds(item.ci.tenant_id))

    async def receive_batch(self, actor: Actor, data: Any) -> list[BatchItem]:
        """Several alerts in one transaction. Refused entries come back with their problems and
        store nothing; the others are handled as if posted one by one, in order."""
        self._check_poster(actor)
        if not isinstance(data, list):
            raise InvalidInput.field("body", "must be a JSON array of alerts")
        if len(data) > MAX_BATCH:
            raise InvalidInput.field("body", f"at most {MAX_BATCH} alerts per batch")
        parsed: list[tuple[int, Judged]] = []
        items: dict[int, BatchItem] = {}
        for index, entry in enumerate(data):
            try:
                item = await self._parse(entry)
            except InvalidInput as error:
                items[index] = BatchItem(index, error=error)
                continue
            parsed.append((index, (item, await self._tenant_thresholds(item.ci.tenant_id))))
        group = self._group()
        async with group.lock:
            results = await self._ingest([judged for _, judged in parsed])
        for (index, _), result in zip(parsed, results, strict=True):
            items[index] = BatchItem(index, result=result)
        return [items[index] for index in range(len(data))]

    def _check_poster(self, actor: Actor) -> None:
        # Alerts come from the provider's monitoring: a customer contact could otherwise open
        # incidents at will. Customers read their alerts (list_alerts) but do not post them.
        if not actor.is_provider_staff:
            raise Forbidden("Monitoring alerts are posted by the provider's monitoring, not by customer contacts.")
        require(actor, *POSTERS)

    # ------------------------------------------------------------------------- group commit

    def _group(self) -> _Group:
        loop = asyncio.get_running_loop()
        group = self._groups.get(id(loop))
        if group is None or group.loop is not loop:
            group = self._groups[id(loop)] = _Group(loop)
        return group

    async def _submit(self, item: AlertInput, thresholds: Thresholds) -> AlertResult:
        """Group commit: alerts that arrive while a transaction runs wait for it, then the
        first of them handles all of them in the next one. A flood then costs one transaction
        per group rather than per alert (SQLite has one writer; PostgreSQL one fsync per commit).
        If a group fails, each of its alerts is retried alone, so one bad alert fails only its
        own request."""
        group = self._group()
        done: asyncio.Future[AlertResult] = group.loop.create_future()
        group.pending.append(((item, thresholds), done))
        async with group.lock:
            if not done.done():
                batch, group.pending = group.pending[:MAX_GROUP], group.pending[MAX_GROUP:]
                await self._run_group(batch)
        return await done

    async def _run_group(self, batch: list[tuple[Judged, asyncio.Future[AlertResult]]]) -> None:
        try:
            await self._run_group_once(batch)
        finally:
            # Interrupted (the leading request cancelled): the others must not wait forever.
            for _, future in batch:
                _settle(future, error=RuntimeError("the alert's transaction was interrupted; send it again"))

    async def _run_group_once(self, batch: list[tuple[Judged, asyncio.Future[AlertResult]]]) -> None:
        try:
            results = await self._ingest([judged for judged, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            for judged, future in batch:
                try:
                    _settle(future, result=(await self._ingest([judged]))[0])
                except Exception as alone:
                    _settle(future, error=alone)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    # ------------------------------------------------------------------------- ingestion

    async def _ingest(self, batch: Sequence[Judged]) -> list[AlertResult]:
        """Stores the alerts and opens or joins incidents, in order, in one transaction."""
        now = self.clock.now()
        judged = []
        for item, (thresholds, problems) in batch:
            threshold = thresholds[item.metric.name]
            evaluation = evaluate(
                threshold,
                item.reading,
                duration_s=item.duration_s,
                ci_name=item.ci.name,
                observed_at=item.observed_at,
                message=item.message,
            )
            judged.append((item, threshold, evaluation, problems))
        decided: list[tuple[str, int | None, str | None]] = []
        async with atomic(repo.engine()):
            # Every claim first, in one order: a transaction then never holds one (CI, metric)
            # row while waiting for another that a second transaction holds (PostgreSQL).
            # The claim carries whether its incident is open (IncidentService.is_open's rule).
            claims = await repo.claim_open(
                [(item.ci.tenant_id, item.ci.id, item.metric.name) for item, _, e, _ in judged if e.breached], now
            )
            known_open: set[tuple[int, str]] = set()
            for item, _, evaluation, _ in judged:
                if not evaluation.breached:
                    decided.append(("ignored", None, None))
                    continue
                key = (item.ci.id, item.metric.name)
                claim = claims[key]
                if claim.incident_id is not None and (key in known_open or claim.incident_open):
                    await self._note_repeat(claim, item, now)
                    outcome = "joined"
                else:
                    incident = await self.incidents.open_from_alert(
                        tenant_id=item.ci.tenant_id,
                        ci_id=item.ci.id,
                        priority=evaluation.priority or "normal",
                        title=evaluation.title,
                        symptoms=evaluation.symptoms,
                        observed_at=item.observed_at,
                    )
                    await repo.point_open(claim.row_id, incident.id, incident.key, now)
                    claim.incident_id, claim.incident_key = incident.id, incident.key
                    claim.noted_at, claim.unnoted = now, 0
                    outcome = "opened"
                known_open.add(key)
                decided.append((outcome, claim.incident_id, claim.incident_key))
            alert_ids = await repo.insert_alerts(
                [
                    repo.NewAlert(
                        tenant_id=item.ci.tenant_id,
                        ci_id=item.ci.id,
                        metric=item.metric.name,
                        value=item.reading.stored,
                        duration_s=item.duration_s or None,
                        message=item.message,
                        observed_at=item.observed_at,
                        received_at=now,
                        breached=evaluation.breached,
                        incident_id=incident_id,
                        outcome=outcome,
                    )
                    for (item, _, evaluation, _), (outcome, incident_id, _) in zip(judged, decided, strict=True)
                ]
            )
        return [
            AlertResult(
                alert_id=alert_id,
                ci=item.ci,
                breached=evaluation.breached,
                outcome=outcome,
                incident_id=incident_id,
                incident_key=incident_key,
                priority=evaluation.priority,
                threshold=threshold,
                threshold_problems=tuple(p for p in problems if _concerns(p, item.metric.name)),
            )
            for alert_id, (item, threshold, evaluation, problems), (outcome, incident_id, incident_key) in zip(
                alert_ids, judged, decided, strict=True
            )
        ]

    async def _note_repeat(self, claim: repo.OpenClaim, item: AlertInput, now: dt.datetime) -> None:
        """Repeats go on the incident's timeline at most once every REPEAT_NOTE (the opening
        counts as a note), the note saying how many joined since the last. Every repeat is in
        the alert table anyway (GET /api/alerts?incident=ID); a flood of thousands a minute
        would bury the timeline and cost a write to the incident each."""
        assert claim.incident_id is not None
        if claim.noted_at is not None and now - claim.noted_at < REPEAT_NOTE:
            claim.unnoted += 1
            return
        summary = repeat_summary(item.reading, item.duration_s, item.observed_at, item.message)
        if claim.noted_at is not None:
            earlier = await repo.joined_since(claim.incident_id, claim.noted_at) + claim.unnoted
            if earlier:
                summary += f" ({earlier} earlier repeat(s) since {claim.noted_at:%H:%M:%S} UTC)"
        await self.incidents.record_alert_repeat(claim.incident_id, summary=summary, observed_at=item.observed_at)
        await repo.mark_noted(claim.row_id, now)
        claim.noted_at, claim.unnoted = now, 0

    # ------------------------------------------------------------------------- validation

    async def _parse(self, data: Any) -> AlertInput:
        if not isinstance(data, Mapping):
            raise InvalidInput.field("body", "must be a JSON object with ci, metric and value")
        problems = [FieldProblem(str(key), "unknown field") for key in data if key not in FIELDS]
        metric: Metric | None = None
        reading: Reading | None = None
        duration = 0.0
        observed_at = self.clock.now()
        message = ""
        for required in ("ci", "metric", "value"):
            if data.get(required) is None and not (required == "value" and "value" in data):
                problems.append(FieldProblem(required, "is required"))
        try:
            metric = metric_named(data.get("metric")) if data.get("metric") is not None else None
        except InvalidInput as error:
            problems += error.problems
        if metric is not None and "value" in data:
            try:
                reading = read_value(metric, data["value"])
            except InvalidInput as error:
                problems += error.problems
        try:
            duration = read_duration(data.get("duration_s"))
        except InvalidInput as error:
            problems += error.problems
        if data.get("observed_at") is not None:
            parsed = _timestamp(data["observed_at"])
            if parsed is None:
                problems.append(FieldProblem("observed_at", "must be an ISO 8601 date-time, e.g. 2026-11-22T06:00:00Z"))
            elif parsed > observed_at + FUTURE_SKEW:
                problems.append(FieldProblem("observed_at", "is in the future"))
            else:
                observed_at = parsed
        raw_message = data.get("message")
        if raw_message is not None:
            if not isinstance(raw_message, str):
                problems.append(FieldProblem("message", "must be a text"))
            else:
                message = raw_message.strip()[:MAX_MESSAGE]
        ci: CIRef | None = None
        if data.get("ci") is not None:
            try:
                ci = await self._find_ci(data["ci"], data.get("customer"))
            except InvalidInput as error:
                problems += error.problems
        if problems or ci is None or metric is None or reading is None:
            raise InvalidInput(problems or [FieldProblem("body", "is incomplete")])
        return AlertInput(ci, metric, reading, duration, observed_at, message)

    async def _find_ci(self, ref: Any, customer: Any) -> CIRef:
        """The CI an alert names: its id, or its name (with `customer` when several customers
        use that name). Remembered for a few seconds: floods name the same CIs again and again."""
        tenant_id = await self._customer_id(customer) if customer is not None else None
        if isinstance(ref, bool) or not isinstance(ref, int | str) or (isinstance(ref, str) and not ref.strip()):
            raise InvalidInput.field("ci", "must be a CI id or name")
        stamp = time.monotonic()
        if isinstance(ref, int) or ref.strip().isdigit():
            ci_id = int(ref)
            cached = self._ci_ids.get(ci_id)
            if cached is not None and cached[0] > stamp:
                found: CIRef | None = cached[1]
            else:
                refs = await cmdb_repo.ci_refs_by_ids([ci_id]) if 0 < ci_id < 2**31 else {}
                found = CIRef(ci_id, *refs[ci_id]) if ci_id in refs else None
                if found is not None:
                    self._remember(self._ci_ids, ci_id, (stamp + CI_CACHE_SECONDS, found))
            if found is None:
                raise InvalidInput.field("ci", f"no CI has id {ci_id}")
            if tenant_id is not None and found.tenant_id != tenant_id:
                raise InvalidInput.field("ci", f"CI {ci_id} does not belong to customer {customer}")
            return found
        name = ref.strip()
        key = (name, tenant_id)
        cached_names = self._ci_names.get(key)
        if cached_names is not None and cached_names[0] > stamp:
            matches = cached_names[1]
        else:
            if tenant_id is not None:  # one light read, the common case for monitoring
                ids = await cmdb_repo.ci_ids_by_name(tenant_id, [name])
                matches = [CIRef(ids[name], tenant_id, name)] if name in ids else []
            else:
                cis = await cmdb_repo.find_ci(Scope.everything(await self._provider()), name)
                matches = [CIRef(ci.id, ci.tenant_id, ci.name) for ci in cis if ci.name == name]
            if matches:
                self._remember(self._ci_names, key, (stamp + CI_CACHE_SECONDS, matches))
        if not matches:
            where = f" of customer {customer}" if customer is not None else ""
            raise InvalidInput.field("ci", f"no CI{where} is named {name!r}")
        if len(matches) > 1:
            raise InvalidInput.field("customer", f"several customers have a CI named {name!r}; say which customer")
        return matches[0]

    async def _customer_id(self, ref: Any) -> int:
        if isinstance(ref, bool) or not isinstance(ref, int | str):
            raise InvalidInput.field("customer", "must be a customer key or id")
        text = str(ref).strip()
        stamp = time.monotonic()
        cached = self._customers.get(text)
        if cached is not None and cached[0] > stamp:
            return cached[1]
        customer = await cmdb_repo.get_customer(
            Scope.everything(await self._provider()), int(text) if text.isdigit() else text
        )
        if customer is None:
            raise InvalidInput.field("customer", f"no customer {text}")
        self._remember(self._customers, text, (stamp + CI_CACHE_SECONDS, customer.id))
        return customer.id

    async def _provider(self) -> int:
        if self._provider_id is None:
            provider = await cmdb_repo.provider()
            if provider is None:
                raise NotFound("provider", "tenant")
            self._provider_id = provider.id
        return self._provider_id

    async def _tenant_thresholds(self, tenant_id: int) -> tuple[AlertThresholds, list[FieldProblem]]:
        stamp = time.monotonic()
        cached = self._thresholds.get(tenant_id)
        if cached is not None and cached[0] > stamp:
            return cached[1], cached[2]
        customers = await cmdb_repo.customers_by_ids([tenant_id])
        customer = customers.get(tenant_id)
        thresholds, problems = AlertThresholds.resolve(customer.sla if customer else None)
        self._remember(self._thresholds, tenant_id, (stamp + CACHE_SECONDS, thresholds, problems))
        return thresholds, problems

    @staticmethod
    def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) > 50_000:
            cache.clear()
        cache[key] = value

    # ------------------------------------------------------------------------- reading

    async def thresholds(self, actor: Actor, customer: int | str) -> tuple[AlertThresholds, list[FieldProblem]]:
        """A customer's effective thresholds, and what is wrong with its overrides if anything."""
        found = await self.cmdb.get_customer(actor, customer)
        return AlertThresholds.resolve(found.sla)

    async def list_alerts(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        ci: int | str | None = None,
        incident: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[repo.StoredAlert], int]:
        """Alerts newest first. Provider staff see every tenant's; a customer contact its own."""
        tenant_id = None if actor.is_provider_staff else actor.tenant_id
        if customer is not None:
            tenant_id = (await self.cmdb.get_customer(actor, customer)).id
        ci_id = None
        if ci is not None:
            ci_id = (await self.cmdb.get_ci(actor, ci)).id
        if not 1 <= limit <= 500 or offset < 0:
            raise InvalidInput.field("limit", "must be between 1 and 500 (offset 0 or more)")
        return await repo.list_alerts(
            tenant_id=tenant_id,
            ci_id=ci_id,
            incident_id=incident,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )

    async def counts(self, tenant_id: int, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
        """Alerts observed in [since, until) for one customer: received, breached (opened +
        joined), opened, joined, ignored. No actor: the monthly report checked access already."""
        by_outcome = await repo.outcome_counts(tenant_id, since, until)
        opened, joined, ignored = (by_outcome.get(k, 0) for k in ("opened", "joined", "ignored"))
        return {
            "received": opened + joined + ignored,
            "breached": opened + joined,
            "opened": opened,
            "joined": joined,
            "ignored": ignored,
        }


def _concerns(problem: FieldProblem, metric: str) -> bool:
    base = "sla.alert_thresholds"
    return problem.field == base or problem.field.startswith(f"{base}.{metric}")


def _timestamp(value: Any) -> dt.datetime | None:
    """ISO 8601 text (a trailing Z allowed; no zone means UTC) or Unix seconds."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if not isinstance(value, str):
            return None
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


__all__ = ["AlertIncidents", "AlertInput", "AlertResult", "AlertService", "BatchItem", "CIRef"]
