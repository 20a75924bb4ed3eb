"""Tenant isolation, swept over every GET route of the application.

A customer contact of ACME walks every GET route the app has (found by introspecting
`app.routes`, so routes added later are covered without touching this file):

- routes without path parameters, plain and with searches and filters naming the other tenant
  (search terms are substrings of GLOBEX's and the provider's secrets, so an echo of the query
  is harmless but a hit shows the whole secret);
- routes with path parameters, each record parameter in turn given GLOBEX's (or the provider's
  private) record by id and by key, the others ACME's own: the answer is 404, and the same page
  a missing record gets (the reference echoed back aside);
- the same routes with ACME's own records, which must not answer 404 or 5xx: proof that the
  sweep put the right kind of record in each parameter.

No response body and no redirect may carry anything of GLOBEX or of the provider's private
records. A parameter the sweep cannot fill fails the test, naming the route, unless it is in
NOT_EXERCISED with a reason. Records of the processes built later (incidents, releases,
problems) are made through the documented API (`/work/shared/api.md`: POST with customer,
title, cis) when that API exists; a route of a kind that could not be made fails the test too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from change.services import ChangeService
from tests.support import World

FULL = {
    "need": "Capacity runs out.",
    "desired_result": "More capacity.",
    "plan": "Add capacity.",
    "backout_plan": "Remove it again.",
    # Patches, so that the patch routes (urgency) answer for ACME's own RFC too.
    "urgency": "important",
}

# The literal segment before a parameter names the kind of record it takes ("/cis/{ref}"),
# looking further back past verbs ("/api/cis/{ref}/path/{other}" -> a CI).
KIND_OF_SEGMENT = {
    "cis": "ci",
    "path": "ci",
    "impact": "ci",
    "changes": "rfc",
    "rfcs": "rfc",
    "people": "person",
    "customers": "customer",
    "relationships": "relationship",
    "incidents": "incident",
    "releases": "release",
    "problems": "problem",
    "monthly": "customer",
    "reports": "customer",
}
# Parameter names that say their kind whatever the path.
KIND_OF_NAME = {"customer": "customer", "customer_ref": "customer", "ci": "ci", "rfc": "rfc", "incident": "incident"}
# Parameters that take no record: a fixed value that the route accepts.
FIXED_VALUES = {"month": "2026-10"}
# Routes the sweep does not fill in, and why that is safe.
NOT_EXERCISED = {
    "/static/{file_path:path}": "static files (CSS, images) hold no tenant data",
    "/schema/{path:str}": "the OpenAPI viewers (swagger, redoc...) hold no tenant data",
}
# What the documented API takes to create a record of a later process (shared/api.md): path,
# who creates it, and whether the body names the affected CIs.
CREATE_THROUGH_API = {
    "incident": ("/api/incidents", "eve", True),
    "release": ("/api/releases", "rita", False),
    "problem": ("/api/problems", "eve", True),
}
MISSING_ID = 987_654


@dataclass
class Record:
    kind: str
    id: int
    key: str | None = None

    def refs(self) -> list[str]:
        return [str(self.id)] + ([self.key] if self.key and self.key != str(self.id) else [])


@dataclass
class Tenants:
    """ACME's own records (per kind, enough for a route with two parameters of one kind),
    GLOBEX's and the provider's private ones, and every string the contact must never see."""

    own: dict[str, list[Record]] = field(default_factory=dict)
    other: dict[str, list[Record]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    unmade: dict[str, str] = field(default_factory=dict)


async def _create_through_api(sign_in: Any, kind: str, customer: str, title: str, cis: list[int]) -> Record | str:
    path, username, with_cis = CREATE_THROUGH_API[kind]
    session = await sign_in(username)
    body: dict[str, Any] = {"customer": customer, "title": title}
    if with_cis:
        body["cis"] = cis
    response = await session.post(path, json=body)
    if response.status_code not in (200, 201):
        return f"POST {path} as {username} answered {response.status_code}: {response.text[:200]}"
    body = response.json()
    return Record(kind, int(body["id"]), str(body.get("key") or body["id"]))


@pytest.fixture
async def tenants(world: World, sign_in: Any) -> Tenants:
    eve, carl = world.actors["eve"], world.actors["carl"]
    change = ChangeService(world.clock, world.service)
    found = Tenants()
    core = await world.ci("PROV", "prov-core-secret", "cluster")
    own_app = await world.ci("ACME", "acme-own-app", "application")
    own_db = await world.ci("ACME", "acme-own-db", "database")
    own_rel = await world.link(own_app.id, own_db.id)
    await world.link(own_db.id, core.id, "hosted_on")
    their_app = await world.ci("GLOBEX", "globex-secret-app", "application")
    their_db = await world.ci("GLOBEX", "globex-secret-db", "database")
    their_rel = await world.link(their_app.id, their_db.id)
    await world.link(their_db.id, core.id, "hosted_on")
    await world.service.update_ci(eve, their_db.id, {"description": "Globex secret ledger"})
    own_rfc = await change.create(eve, {"customer": "ACME", "title": "Acme own upgrade", "cis": [own_db.id], **FULL})
    await change.act(eve, own_rfc.id, "submit", {})
    their_rfc = await change.create(
        eve, {"customer": "GLOBEX", "title": "Globex secret migration", "cis": [their_db.id], **FULL}
    )
    await change.act(eve, their_rfc.id, "submit", {})
    await change.act(carl, their_rfc.id, "authorize", {"release_requirements": ["globex secret tests"]})
    internal = await change.create(
        eve, {"customer": "PROV", "title": "Provider internal secret swap", "cis": [core.id]}
    )

    found.own = {
        "ci": [Record("ci", own_app.id, own_app.name), Record("ci", own_db.id, own_db.name)],
        "rfc": [Record("rfc", own_rfc.id, own_rfc.key)],
        "person": [Record("person", world.actors["acme-contact"].person_id or 0, "acme-contact")],
        "customer": [Record("customer", world.acme.id, "ACME")],
        "relationship": [Record("relationship", own_rel.id)],
    }
    found.other = {
        "ci": [
            Record("ci", their_app.id, their_app.name),
            Record("ci", their_db.id, their_db.name),
            Record("ci", core.id, core.name),
        ],
        "rfc": [Record("rfc", their_rfc.id, their_rfc.key), Record("rfc", internal.id, internal.key)],
        "person": [Record("person", world.actors["globex-contact"].person_id or 0, "globex-contact")],
        "customer": [Record("customer", world.globex.id, "GLOBEX")],
        "relationship": [Record("relationship", their_rel.id)],
    }
    found.secrets = [
        "globex",  # GLOBEX's key, name, CI names, contact, titles: all carry it
        "prov-core-secret",
        "Provider internal secret swap",
        their_rfc.key,
        internal.key,
    ]
    for kind in CREATE_THROUGH_API:
        own = await _create_through_api(sign_in, kind, "ACME", f"Acme own {kind}", [own_db.id])
        theirs = await _create_through_api(sign_in, kind, "GLOBEX", f"Globex secret {kind}", [their_db.id])
        if isinstance(own, Record) and isinstance(theirs, Record):
            found.own[kind], found.other[kind] = [own], [theirs]
            found.secrets += [theirs.key or ""]
        else:
            found.unmade[kind] = str(theirs if isinstance(theirs, str) else own)
    return found


# --- reading the routes -------------------------------------------------------------------------


def get_routes(app: Litestar) -> list[HTTPRoute]:
    return sorted(
        (r for r in app.routes if isinstance(r, HTTPRoute) and "GET" in r.methods),
        key=lambda r: r.path,
    )


def parameter_kinds(path: str) -> list[tuple[str, str | None]]:
    """Each path parameter with the kind of record it takes, "fixed" for FIXED_VALUES, None
    when the sweep cannot tell."""
    kinds: list[tuple[str, str | None]] = []
    literal: list[str] = []
    for segment in path.strip("/").split("/"):
        match = re.fullmatch(r"\{(\w+):\w+\}", segment)
        if not match:
            literal.append(segment)
            continue
        name = match.group(1)
        if name in FIXED_VALUES:
            kinds.append((name, "fixed"))
        elif name in KIND_OF_NAME:
            kinds.append((name, KIND_OF_NAME[name]))
        else:
            kinds.append((name, next((KIND_OF_SEGMENT[s] for s in reversed(literal) if s in KIND_OF_SEGMENT), None)))
    return kinds


def fill(route: HTTPRoute, values: dict[str, str]) -> str:
    return route.path_format.format(**{name: quote(value, safe="") for name, value in values.items()})


def missing_like(ref: str) -> str:
    """A reference of the same shape that names nothing."""
    if ref.isdigit():
        return str(MISSING_ID)
    if re.search(r"\d+$", ref):
        return re.sub(r"\d+$", lambda m: "9" * len(m.group(0)), ref)
    return ref + "-nosuch"


CSRF_VALUE = re.compile(r'(name="_csrf_token" value=")[^"]*"')


def as_if_asked_for(body: str, missing: str, ref: str) -> str:
    """The missing record's page, as it would read had the caller asked for `ref`."""
    return CSRF_VALUE.sub(r"\1", body).replace(quote(missing, safe=""), quote(ref, safe="")).replace(missing, ref)


def leaks(response: Any, secrets: list[str], other_ids: set[int], sent: list[str]) -> list[str]:
    """The secrets a response carries, in its body or its redirect, once the references the
    caller sent themselves are taken out (an error may repeat what it was asked)."""
    body = (
        response.text if "pdf" not in response.headers.get("content-type", "") else response.content.decode("latin-1")
    )
    text = body.lower()
    for ref in sorted(sent, key=len, reverse=True):
        text = text.replace(ref.lower(), "").replace(quote(ref, safe="").lower(), "")
    found = [s for s in secrets if s.lower() in text]
    location = response.headers.get("location", "")
    found += [f"redirect to {location}" for i in other_ids if re.search(rf"/{i}(?:[/?#]|$)", location)]
    found += [f"redirect to {location}" for s in secrets if s.lower() in location.lower()]
    return found


def headers_for(path: str) -> dict[str, str]:
    return {} if path.startswith("/api/") else {"accept": "text/html"}


async def test_no_get_route_shows_a_customer_anything_of_another_tenant(
    app: Litestar, tenants: Tenants, sign_in: Any
) -> None:
    contact = await sign_in("acme-contact")
    other_ids = {r.id for records in tenants.other.values() for r in records if r.kind != "person"}
    problems: list[str] = []
    unexercised: dict[str, str] = {}
    exercised = 0

    seen: dict[str, Any] = {}

    async def fetch(path: str, sent: list[str]) -> Any:
        nonlocal exercised
        if path in seen:  # the missing-record reference of several parameters' values
            return seen[path]
        exercised += 1
        response = seen[path] = await contact.get(path, headers=headers_for(path), follow_redirects=False)
        if response.status_code >= 500:
            problems.append(f"GET {path}: {response.status_code}")
        found = leaks(response, tenants.secrets, other_ids, sent)
        if found:
            problems.append(f"GET {path} ({response.status_code}) shows {sorted(set(found))}")
        return response

    searches = [
        {"q": "secret"},
        {"q": "lobe"},
        {"q": tenants.other["rfc"][0].key[:-1] if tenants.other["rfc"][0].key else "RFC"},
        {"customer": "GLOBEX"},
        {"customer": str(tenants.other["customer"][0].id)},
        {"ci": str(tenants.other["ci"][0].id)},
    ]
    for route in get_routes(app):
        kinds = parameter_kinds(route.path)
        if not kinds:
            await fetch(route.path, [])
            if route.path.startswith("/schema"):
                continue  # the OpenAPI document and its viewers take no query
            for params in searches:
                sent = [params["customer"]] if "customer" in params else []
                await fetch(f"{route.path}?{urlencode(params)}", sent)
            continue
        if route.path in NOT_EXERCISED:
            continue
        unknown = [name for name, kind in kinds if kind is None]
        unmade = [kind for _, kind in kinds if kind in tenants.unmade]
        if unknown:
            unexercised[route.path] = f"no kind of record known for parameter(s) {unknown}"
            continue
        if unmade:
            unexercised[route.path] = f"could not make a {unmade[0]}: {tenants.unmade[unmade[0]]}"
            continue
        absent = [kind for _, kind in kinds if kind != "fixed" and kind not in tenants.own]
        if absent:
            unexercised[route.path] = f"the sweep makes no {absent[0]} records: add them to the `tenants` fixture"
            continue

        # ACME's own records: the sweep filled the parameters with the right kind of record.
        own: dict[str, str] = {}
        used: dict[str, int] = {}
        for name, kind in kinds:
            if kind == "fixed":
                own[name] = FIXED_VALUES[name]
                continue
            assert kind is not None
            records = tenants.own[kind]
            own[name] = str(records[min(used.get(kind, 0), len(records) - 1)].id)
            used[kind] = used.get(kind, 0) + 1
        response = await fetch(fill(route, own), [])
        if response.status_code == 404:
            problems.append(f"GET {fill(route, own)} with ACME's own records answered 404: {response.text[:160]}")

        # Each record parameter in turn: GLOBEX's or the provider's, by id and by key.
        for name, kind in kinds:
            if kind == "fixed":
                continue
            assert kind is not None
            for record in tenants.other[kind]:
                for ref in record.refs():
                    path = fill(route, {**own, name: ref})
                    response = await fetch(path, [ref])
                    if response.status_code != 404:
                        problems.append(f"GET {path} answered {response.status_code}, not 404")
                        continue
                    missing = missing_like(ref)
                    reference = await fetch(fill(route, {**own, name: missing}), [missing])
                    if CSRF_VALUE.sub(r"\1", response.text) != as_if_asked_for(reference.text, missing, ref):
                        problems.append(
                            f"GET {path} does not answer like a missing record: {response.text[:200]!r} "
                            f"vs {reference.text[:200]!r}"
                        )

    assert not problems, "tenant isolation broken:\n" + "\n".join(problems)
    assert not unexercised, (
        "routes the isolation sweep could not exercise; teach it their parameters (KIND_OF_SEGMENT, "
        "KIND_OF_NAME, FIXED_VALUES, the `tenants` fixture) or list them in NOT_EXERCISED with a reason:\n"
        + "\n".join(f"{path}: {why}" for path, why in sorted(unexercised.items()))
    )
    assert exercised > 100  # the sweep itself ran


def test_the_sweep_reads_parameter_kinds_from_the_path() -> None:
    assert parameter_kinds("/cis/{ref:str}/impact") == [("ref", "ci")]
    assert parameter_kinds("/api/cis/{ref:str}/path/{other:str}") == [("ref", "ci"), ("other", "ci")]
    assert parameter_kinds("/reports/monthly/{customer:str}/{month:str}") == [
        ("customer", "customer"),
        ("month", "fixed"),
    ]
    assert parameter_kinds("/api/incidents/{ref:str}/matches") == [("ref", "incident")]
    assert parameter_kinds("/things/{ref:str}") == [("ref", None)]
    assert missing_like("RFC-2026-0007") == "RFC-2026-9999"
    assert missing_like("globex-db") == "globex-db-nosuch"
