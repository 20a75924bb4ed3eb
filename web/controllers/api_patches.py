"""The patch urgency API: one RFC's urgency, the urgency board, monthly compliance."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import Parameter

from cmdb.models import Actor
from release.patches import PatchService
from web.deps import parse_ref

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0)]


@get(
    "/api/rfcs/{ref:str}/urgency",
    tags=["patches"],
    summary="A patch RFC's urgency: level, clock start, due time, state",
    description=(
        "`state` is on_track, at_risk, overdue or met. An RFC without an urgency level is not a patch: "
        "404 with error `not_a_patch`."
    ),
)
async def rfc_urgency(patches: PatchService, actor: Actor, ref: str) -> dict[str, Any]:
    return (await patches.urgency(actor, parse_ref(ref))).as_dict()


@get(
    "/api/patches",
    tags=["patches"],
    summary="The patch urgency board, soonest due first",
    description=(
        "Patch RFCs that are not rejected or withdrawn. `state` (comma-separated on_track, at_risk, overdue, "
        "met) defaults to the open ones: on_track, at_risk, overdue. `counts` gives every state's count."
    ),
)
async def patch_board(
    patches: PatchService,
    actor: Actor,
    customer: str | None = None,
    state_filter: Annotated[str | None, Parameter(query="state", description="comma-separated states")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    rows, total, counts = await patches.board(
        actor,
        customer=parse_ref(customer) if customer else None,
        states=state_filter.split(",") if state_filter else None,
        limit=limit,
        offset=offset,
    )
    return {"items": [row.as_dict() for row in rows], "total": total, "counts": counts}


@get(
    "/api/patches/compliance",
    tags=["patches"],
    summary="A customer's patch compliance in a month",
    description=(
        "`share_met_on_time` of the patches due in the month (customer's time zone) and decided; `lacking`: "
        "CIs still lacking an approved patch past its due time, as of now. A month in the future: 422."
    ),
)
async def patch_compliance(
    patches: PatchService, actor: Actor, customer: str | None = None, month: str | None = None
) -> dict[str, Any]:
    result = await patches.compliance(actor, parse_ref(customer) if customer else None, month)
    return result.as_dict()


HANDLERS: list[Any] = [rfc_urgency, patch_board, patch_compliance]
