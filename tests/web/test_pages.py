"""Browser pages through Litestar's test client: sign-in and sessions, CSRF, the CI list and
detail, the impact picture, the audit, tenancy and redaction, escaping."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from litestar import Litestar
from litestar.testing import AsyncTestClient

from cmdb.models import Actor, CIClass, CIStatus, Role
from tests.support import World
from web.controllers.pages import navigation, safe_next

Client = AsyncTestClient[Litestar]
HTML = {"accept": "text/html"}


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


async def browser_sign_in(client: Client, world: World, username: str, next_: str = "/") -> Any:
    form = await client.get("/login")
    assert form.status_code == 200
    return await client.post(
        "/login",
        data={
            "username": username,
            "password": world.passwords[username],
            "next": next_,
            "_csrf_token": csrf_from(form.text),
        },
        follow_redirects=False,
    )


async def signed_in(client: Client, world: World, username: str) -> str:
    response = await browser_sign_in(client, world, username)
    assert response.status_code == 303, response.text
    return str(response.cookies["keel_session"])


async def api_token(client: Client, world: World, username: str) -> str:
    response = await client.post("/api/auth/token", json={"username": username, "password": world.passwords[username]})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


# --- sign-in, sessions, CSRF ------------------------------------------------------------------


async def test_login_form_is_accessible_and_carries_csrf(world: World, client: Client) -> None:
    response = await client.get("/login?next=/cis")
    assert response.status_code == 200
    html = response.text
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'href="#main"' in html  # skip link
    assert 'name="next" value="/cis"' in html
    assert csrf_from(html)
    assert "csrftoken" in response.cookies


async def test_sign_in_issues_a_fresh_session_secret(world: World, client: Client) -> None:
    client.cookies.set("keel_session", "attacker-chosen-session-id")
    response = await browser_sign_in(client, world, "eve")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    first = response.cookies["keel_session"]
    assert first and first != "attacker-chosen-session-id"
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    # Signing in again while holding a valid session still gets a new secret.
    again = await browser_sign_in(client, world, "eve")
    assert again.cookies["keel_session"] not in (first, "attacker-chosen-session-id")
    page = await client.get("/cis")
    assert page.status_code == 200
    assert "Eve" in page.text


async def test_wrong_password_shows_the_form_again_with_401(world: World, client: Client) -> None:
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={"username": "eve", "password": "not-her-password", "_csrf_token": csrf_from(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "Unknown username or wrong password" in response.text
    assert 'value="eve"' in response.text
    assert "keel_session" not in response.cookies


async def test_the_sign_in_page_says_when_an_account_is_locked(world: World, client: Client) -> None:
    form = await client.get("/login")
    token = csrf_from(form.text)
    for _ in range(5):
        await client.post("/login", data={"username": "eve", "password": "nope-nope", "_csrf_token": token})
    response = await browser_sign_in(client, world, "eve")
    assert response.status_code == 429
    assert "Too many failed sign-ins for eve" in response.text
    assert "keel_session" not in response.cookies


async def test_sign_in_redirects_only_to_local_paths(world: World, client: Client) -> None:
    for hostile in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "evil"]:
        response = await browser_sign_in(client, world, "eve", next_=hostile)
        assert response.status_code == 303
        assert response.headers["location"] == "/", hostile
    response = await browser_sign_in(client, world, "eve", next_="/cis?q=web")
    assert response.headers["location"] == "/cis?q=web"


def test_safe_next_unit() -> None:
    assert safe_next(None) == "/"
    assert safe_next("/cis/4/impact?direction=up") == "/cis/4/impact?direction=up"
    assert safe_next("http://evil") == "/"
    assert safe_next("/\t/evil") == "/"


async def test_unauthenticated_page_redirects_to_login(world: World, client: Client) -> None:
    response = await client.get("/cis?q=db", headers=HTML, follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"] == "/login?next=" + quote("/cis?q=db")
    response = await client.get("/", follow_redirects=False)
    assert response.headers["location"].startswith("/login")


async def test_login_post_needs_the_csrf_token(world: World, client: Client) -> None:
    await client.get("/login")  # the CSRF cookie is set, but the form field is missing
    response = await client.post(
        "/login", data={"username": "eve", "password": world.passwords["eve"]}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "keel_session" not in response.cookies
    response = await browser_sign_in(client, world, "eve")
    assert response.status_code == 303


async def test_logout_revokes_the_session(world: World, client: Client) -> None:
    session = await signed_in(client, world, "eve")
    page = await client.get("/cis")
    assert page.status_code == 200
    # Without the CSRF token, sign-out is refused and the session lives on.
    refused = await client.post("/logout", follow_redirects=False)
    assert refused.status_code == 403
    response = await client.post("/logout", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert 'keel_session=""' in response.headers["set-cookie"] or "max-age=0" in response.headers["set-cookie"].lower()
    client.cookies.set("keel_session", session)  # replaying the old cookie
    response = await client.get("/cis", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"].startswith("/login")


async def test_bearer_token_opens_pages(world: World, client: Client) -> None:
    await world.ci("ACME", "token-visible-server")
    token = await api_token(client, world, "eve")
    response = await client.get("/cis", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "token-visible-server" in response.text


async def test_home_redirects_to_the_ci_list(world: World, client: Client) -> None:
    await signed_in(client, world, "eve")
    response = await client.get("/", follow_redirects=False)
    assert response.headers["location"] == "/cis"


# --- layout and navigation --------------------------------------------------------------------


async def test_navigation_by_role(world: World, client: Client) -> None:
    await signed_in(client, world, "eve")
    page = (await client.get("/cis")).text
    assert 'href="/audit"' in page and 'href="/impact"' in page and 'aria-current="page"' in page
    assert "Sign out" in page
    await signed_in(client, world, "acme-contact")
    page = (await client.get("/cis")).text
    assert 'href="/audit"' not in page
    assert 'href="/cis"' in page


def test_navigation_is_built_by_role() -> None:
    staff = Actor(1, "carl", "Carl", 1, 1, frozenset({Role.CHANGE_MANAGER}))
    customer = Actor(2, "c", "C", 2, 1, frozenset({Role.CUSTOMER}))
    assert [link.key for link in navigation(staff, "cis")][:3] == ["cis", "impact", "audit"]
    assert navigation(staff, "cis")[0].current
    assert [link.key for link in navigation(customer)][:2] == ["cis", "impact"]
    assert "audit" not in {link.key for link in navigation(customer)}


async def test_navigation_never_links_a_missing_page(world: World, client: Client) -> None:
    for username in ("carl", "eve", "kim", "acme-contact", "admin"):
        client.cookies.clear()
        await signed_in(client, world, username)
        actor = world.actors[username]
        for link in navigation(actor):
            response = await client.get(link.href, headers=HTML)
            assert response.status_code == 200, (username, link.href, response.status_code)


async def test_error_pages_use_the_layout(world: World, client: Client) -> None:
    await signed_in(client, world, "eve")
    response = await client.get("/cis/999999", headers=HTML)
    assert response.status_code == 404
    assert '<a class="brand"' in response.text and "Sign out" in response.text
    assert "/static/keel.css" in response.text


async def test_stylesheet_is_served(world: World, client: Client) -> None:
    response = await client.get("/static/keel.css")
    assert response.status_code == 200
    assert ".c-green" in response.text


# --- the CI list ------------------------------------------------------------------------------


async def test_ci_list_search_filters_and_pages(world: World, client: Client) -> None:
    await world.ci("ACME", "acme-web-01", "server")
    await world.ci("ACME", "acme-db-01", "database", status="planned")
    await world.ci("GLOBEX", "globex-web-01", "server")
    await signed_in(client, world, "eve")

    page = (await client.get("/cis")).text
    for name in ("acme-web-01", "acme-db-01", "globex-web-01"):
        assert name in page
    assert "<strong>3</strong> configuration items" in page
    assert 'class="badge c-green">Live<' in page and 'class="badge c-blue">Planned<' in page
    assert 'option value="GLOBEX"' in page  # provider staff filter by customer

    page = (await client.get("/cis?q=web")).text
    assert "acme-web-01" in page and "globex-web-01" in page and "acme-db-01" not in page

    page = (await client.get("/cis?customer=GLOBEX")).text
    assert "globex-web-01" in page and "acme-web-01" not in page

    page = (await client.get(f"/cis?class={CIClass.DATABASE.value}")).text
    assert "acme-db-01" in page and "acme-web-01" not in page

    page = (await client.get(f"/cis?status={CIStatus.PLANNED.value}&class=")).text
    assert "acme-db-01" in page and "globex-web-01" not in page

    page = (await client.get("/cis?limit=2")).text
    assert "1\u20132 of 3" in page
    assert 'href="/cis?limit=2&amp;offset=2"' in page
    page = (await client.get("/cis?limit=2&offset=2")).text
    assert "3\u20133 of 3" in page and 'rel="prev"' in page

    response = await client.get("/cis?class=spaceship", headers=HTML)
    assert response.status_code == 422
    assert "unknown class" in response.text


async def test_customer_sees_only_own_cis(world: World, client: Client) -> None:
    await world.ci("ACME", "acme-app")
    globex = await world.ci("GLOBEX", "globex-secret-app")
    await signed_in(client, world, "acme-contact")
    page = (await client.get("/cis")).text
    assert "acme-app" in page and "globex-secret-app" not in page
    assert 'option value="GLOBEX"' not in page
    page = (await client.get("/cis?customer=GLOBEX")).text  # ignored for customers
    assert "globex-secret-app" not in page
    response = await client.get(f"/cis/{globex.id}", headers=HTML)
    assert response.status_code == 404
    assert "globex-secret-app" not in response.text
    response = await client.get(f"/cis/{globex.id}/impact", headers=HTML)
    assert response.status_code == 404


async def test_tenant_text_is_escaped(world: World, client: Client) -> None:
    await world.ci("ACME", "<script>alert(1)</script>", description='"><img src=x onerror=alert(2)>')
    await signed_in(client, world, "eve")
    page = (await client.get("/cis")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    ci_id = re.search(r'href="/cis/(\d+)">&lt;script', page)
    assert ci_id
    detail = (await client.get(f"/cis/{ci_id.group(1)}")).text
    assert "<img src=x" not in detail and "&lt;img src=x" in detail
    impact = (await client.get(f"/cis/{ci_id.group(1)}/impact")).text
    assert "<script>alert(1)" not in impact and "&lt;script&gt;" in impact


# --- CI detail --------------------------------------------------------------------------------


async def test_ci_detail_shows_attributes_relationships_and_history(world: World, client: Client) -> None:
    db = await world.ci("ACME", "acme-db", "database", attributes={"version": "15.2", "engine": "PostgreSQL"})
    app = await world.ci("ACME", "acme-shop", "application")
    await world.link(app.id, db.id, "depends_on")
    await world.service.update_ci(
        world.actors["eve"], db.id, {"attributes": {"version": "16.1"}, "status": "under_change"}, comment="upgrade"
    )
    await signed_in(client, world, "eve")
    page = (await client.get(f"/cis/{db.id}")).text
    assert "<h1>acme-db</h1>" in page
    assert "Engine" in page and "PostgreSQL" in page  # labels from the attribute specs
    assert "controlled" in page
    assert f'href="/cis/{app.id}">acme-shop</a>' in page
    assert f'href="/cis/{db.id}/impact"' in page
    # History: who, what changed before -> after, unauthorized marked.
    assert "Updated" in page and "by eve" in page
    assert '<td class="before">15.2</td><td class="after">16.1</td>' in page
    assert '<td class="before">Live</td><td class="after">Under change</td>' in page
    assert "Unauthorized: Version" in page
    assert "upgrade" in page
    assert "Relationship created: acme-shop depends on acme-db" in page
    assert "2026-11-02 14:00 UTC" in page


async def test_customer_sees_provider_ci_redacted_on_the_detail_page(world: World, client: Client) -> None:
    host = await world.ci("PROV", "prov-hypervisor-17", "server")
    app = await world.ci("ACME", "acme-portal", "application")
    await world.link(app.id, host.id, "runs_on")
    await signed_in(client, world, "acme-contact")
    page = (await client.get(f"/cis/{app.id}")).text
    assert "prov-hypervisor-17" not in page
    assert f"provider CI #{host.id} (Server)" in page
    response = await client.get(f"/cis/{host.id}", headers=HTML)
    assert response.status_code == 404


# --- impact -----------------------------------------------------------------------------------


async def test_impact_page_draws_the_neighbourhood(world: World, client: Client) -> None:
    db = await world.ci("ACME", "acme-orders-db", "database")
    app = await world.ci("ACME", "acme-orders-app", "application")
    svc = await world.ci("ACME", "acme-orders-service", "service")
    other = await world.ci("ACME", "acme-unrelated")
    await world.link(app.id, db.id)
    await world.link(svc.id, app.id)
    await signed_in(client, world, "eve")
    response = await client.get(f"/cis/{db.id}/impact?direction=down")
    assert response.status_code == 200
    page = response.text
    svg = page[page.index("<svg") : page.index("</svg>")]
    for name in ("acme-orders-db", "acme-orders-app", "acme-orders-service"):
        assert name in svg
    assert "acme-unrelated" not in page
    assert f'class="node root" data-id="{db.id}"' in svg
    assert f'class="node impacted" data-id="{app.id}"' in svg
    assert f'class="node impacted" data-id="{svc.id}"' in svg
    assert svg.count('class="edge"') == 2
    assert "depends on" in svg
    # The table: CI, depth, via.
    table = page[page.index('class="data impact-table"') :]
    assert f'href="/cis/{app.id}">acme-orders-app</a>' in table
    assert re.search(r"acme-orders-service</a></th>.*?<td>2</td>\s*<td>acme-orders-app</td>", table, re.S)
    # Up from the service: what it relies on.
    page = (await client.get(f"/cis/{svc.id}/impact?direction=up&depth=1")).text
    table = page[page.index('class="data impact-table"') :]
    assert "acme-orders-app" in table and "acme-orders-db" not in table
    assert other.id  # drawn nowhere


async def test_impact_search_goes_to_the_ci(world: World, client: Client) -> None:
    ci = await world.ci("ACME", "acme-find-me")
    await signed_in(client, world, "eve")
    response = await client.get("/impact?ci=acme-find-me", follow_redirects=False)
    assert response.headers["location"] == f"/cis/{ci.id}/impact"
    response = await client.get("/impact?ci=nothing-like-it")
    assert response.status_code == 404
    assert "No CI nothing-like-it" in response.text
    assert (await client.get("/impact")).status_code == 200


async def test_customer_impact_redacts_provider_cis(world: World, client: Client) -> None:
    host = await world.ci("PROV", "prov-shared-san", "storage")
    app = await world.ci("ACME", "acme-erp", "application")
    await world.link(app.id, host.id)
    await signed_in(client, world, "acme-contact")
    page = (await client.get(f"/cis/{app.id}/impact?direction=up")).text
    assert "prov-shared-san" not in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    table = page[page.index('class="data impact-table"') :]
    assert f"provider CI #{host.id} (Storage)" in svg
    assert f"provider CI #{host.id} (Storage)" in table
    assert f'href="/cis/{host.id}' not in page
    assert "acme-erp" in svg


async def test_hub_picture_is_capped(world: World, client: Client) -> None:
    hub = await world.ci("ACME", "acme-core-switch", "network_device")
    for number in range(70):
        leaf = await world.ci("ACME", f"acme-host-{number:02}")
        await world.link(leaf.id, hub.id, "connected_to")
    await signed_in(client, world, "eve")
    page = (await client.get(f"/cis/{hub.id}/impact")).text
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert len(re.findall(r'<g class="node[ "]', svg)) == 60
    assert "11 more not drawn" in page
    assert "70</span>" in page  # every impacted CI counted in the table heading


# --- audit ------------------------------------------------------------------------------------


async def test_audit_lists_unauthorized_changes_for_staff_only(world: World, client: Client) -> None:
    server = await world.ci("ACME", "acme-fw", "server", attributes={"ip_address": "10.0.0.1"})
    await world.service.update_ci(world.actors["eve"], server.id, {"attributes": {"ip_address": "10.0.0.2"}})
    await world.service.update_ci(world.actors["eve"], server.id, {"description": "not controlled"})
    await signed_in(client, world, "carl")
    page = (await client.get("/audit")).text
    assert f'href="/cis/{server.id}">acme-fw</a>' in page
    assert "IP address" in page and "10.0.0.1" in page and "10.0.0.2" in page
    assert page.count('<tr class="unauthorized">') == 1
    assert "No unauthorized changes" in (await client.get("/audit?customer=GLOBEX")).text
    await signed_in(client, world, "acme-contact")
    response = await client.get("/audit", headers=HTML)
    assert response.status_code == 403
