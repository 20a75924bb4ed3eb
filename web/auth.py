"""Who is calling: a bearer token (API, scripts) or a session cookie (browser pages).

The API accepts only bearer tokens, so it needs no CSRF protection; pages accept either, and
their forms carry Litestar's CSRF token. Guards mirror the role checks the services make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from cmdb.accounts import Accounts
from cmdb.models import PROVIDER_ROLES, Actor, Role

SESSION_COOKIE = "keel_session"
PUBLIC_PATHS = ["^/login", "^/static/", "^/schema", "^/health$", "^/favicon.ico$"]


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class KeelAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        accounts: Accounts = connection.app.state.accounts
        token = bearer_token(connection)
        if token is not None:
            actor = await accounts.actor_for(token, "api")
            if actor is None:
                raise NotAuthorizedException("The bearer token is unknown or expired: sign in again.")
            return AuthenticationResult(user=actor, auth=("api", token))
        is_api = connection.url.path.startswith("/api/")
        cookie = connection.cookies.get(SESSION_COOKIE)
        if cookie and not is_api:
            actor = await accounts.actor_for(cookie, "web")
            if actor is not None:
                return AuthenticationResult(user=actor, auth=("web", cookie))
        detail = "Send Authorization: Bearer <token> (POST /api/auth/token)." if is_api else "Sign in first."
        raise NotAuthorizedException(detail)


def requires(*roles: Role) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """A guard: the caller must hold one of `roles`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        actor: Actor = connection.user
        if not actor.has_any(*roles):
            raise PermissionDeniedException(f"This needs one of the roles: {', '.join(r.value for r in roles)}.")

    return guard


def provider_staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    actor: Actor = connection.user
    if not actor.is_provider_staff:
        raise PermissionDeniedException("Only the provider's staff may do this.")


CI_WRITER_GUARD = requires(Role.ENGINEER, Role.CHANGE_MANAGER, Role.RELEASE_MANAGER, Role.ADMINISTRATOR)
ADMIN_GUARD = requires(Role.ADMINISTRATOR)
STAFF_ROLES = tuple(PROVIDER_ROLES)
