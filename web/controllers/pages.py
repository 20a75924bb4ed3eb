"""Browser pages (being written)."""

from typing import Any

PAGE_HANDLERS: list[Any] = []
