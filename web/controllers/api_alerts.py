"""The monitoring alerts API (api.md, "Monitoring alerts"; docs/alerts.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from cmdb.models import Actor
from cmdb.services import CMDBService
from incident.alerts import AlertService
from web.deps import parse_ref


class AlertController(Controller):
    path = "/api/alerts"
    tags = ["alerts"]

    @post("/", summary="Receive one monitoring alert; a breach opens or joins an incident")
    async def receive(self, alerts: AlertService, actor: Actor, data: Any) -> Response[dict[str, Any]]:
        result = await alerts.receive(actor, data)
        status = HTTP_201_CREATED if result.outcome == "opened" else HTTP_200_OK
        return Response(content=result.as_dict(), status_code=status)

    @post("/batch", status_code=HTTP_200_OK, summary="Receive up to 1,000 alerts in one transaction")
    async def receive_batch(self, alerts: AlertService, actor: Actor, data: Any) -> dict[str, Any]:
        items = await alerts.receive_batch(actor, data)
        outcomes = [item.result.outcome for item in items if item.result is not None]
        return {
            "items": [item.as_dict() for item in items],
            "received": len(items),
            "breached": sum(1 for item in items if item.result is not None and item.result.breached),
            "opened": outcomes.count("opened"),
            "joined": outcomes.count("joined"),
            "ignored": outcomes.count("ignored"),
            "refused": sum(1 for item in items if item.error is not None),
        }

    @get("/", summary="Alerts received, newest first")
    async def list_alerts(
        self,
        alerts: AlertService,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        ci: str | None = None,
        incident: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> dict[str, Any]:
        items, total = await alerts.list_alerts(
            actor,
            customer=parse_ref(customer) if customer else None,
            ci=parse_ref(ci) if ci else None,
            incident=incident,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({alert.tenant_id for alert in items})
        return {
            "items": [
                {
                    "id": alert.id,
                    "customer": keys.get(alert.tenant_id),
                    "ci": alert.ci_id,
                    "metric": alert.metric,
                    "value": alert.value,
                    "duration_s": alert.duration_s,
                    "message": alert.message,
                    "observed_at": alert.observed_at.isoformat(),
                    "received_at": alert.received_at.isoformat(),
                    "breached": alert.breached,
                    "incident": alert.incident_id,
                    "outcome": alert.outcome,
                }
                for alert in items
            ],
            "total": total,
        }

    @get("/thresholds", summary="A customer's effective alert thresholds and any fault in its overrides")
    async def thresholds(self, alerts: AlertService, actor: Actor, customer: str) -> dict[str, Any]:
        thresholds, problems = await alerts.thresholds(actor, parse_ref(customer))
        return {"thresholds": thresholds.as_dict(), "problems": [problem.as_dict() for problem in problems]}


HANDLERS: list[Any] = [AlertController]
