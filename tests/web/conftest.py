"""Web fixtures: an app per test on the test's database, and signed-in API clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support import FakeClock, World
from web.app import create_app
from web.settings import Settings

SETTINGS = Settings(secret_key="test-secret-key-not-for-production-0123456789", secure_cookies=False)


@pytest.fixture
def app(world: World, clock: FakeClock) -> Litestar:
    # The world's service shares no state with the app but the database, like a second process.
    return create_app(SETTINGS, clock=clock)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


class ApiSession:
    """An API caller signed in as one person."""

    def __init__(self, client: AsyncTestClient[Litestar], token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def get(self, url: str, **kwargs: Any) -> Any:
        return await self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Any:
        return await self.client.post(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Any:
        return await self.client.patch(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Any:
        return await self.client.delete(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def sign_in(client: AsyncTestClient[Litestar], world: World) -> Any:
    async def _sign_in(username: str) -> ApiSession:
        response = await client.post(
            "/api/auth/token", json={"username": username, "password": world.passwords[username]}
        )
        assert response.status_code == 200, response.text
        return ApiSession(client, response.json()["token"])

    return _sign_in
