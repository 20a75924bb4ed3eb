"""Domain errors: what went wrong, in words a person can act on.

Every package raises these; `web/errors.py` is the one place that maps them to HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error the rules raise on purpose."""

    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class FieldProblem:
    """One reason one field was refused. `row` is set for bulk imports."""

    field: str
    reason: str
    row: int | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"field": self.field, "reason": self.reason}
        if self.row is not None:
            data["row"] = self.row
        return data

    def sentence(self) -> str:
        where = f"row {self.row}, " if self.row is not None else ""
        return f"{where}{self.field}: {self.reason}"


class InvalidInput(DomainError):
    """The input breaks a rule; nothing was saved. Lists every problem found, not just the first."""

    code = "invalid_input"

    def __init__(self, problems: Sequence[FieldProblem] | FieldProblem, detail: str | None = None) -> None:
        self.problems: tuple[FieldProblem, ...] = (problems,) if isinstance(problems, FieldProblem) else tuple(problems)
        shown = "; ".join(p.sentence() for p in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(detail or f"{shown}{more}")

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidInput:
        return cls(FieldProblem(field, reason))


class NotFound(DomainError):
    """Missing, or belonging to a tenant the actor may not see: the two are indistinguishable on purpose."""

    code = "not_found"

    def __init__(self, kind: str, ref: object) -> None:
        super().__init__(f"No {kind} {ref!s} exists, or you may not see it.")
        self.kind = kind
        self.ref = ref


class Conflict(DomainError):
    """The record's current state does not allow this, or it moved on since the caller read it."""

    code = "conflict"

    def __init__(self, detail: str, *, state: str | None = None, allowed: Sequence[str] = ()) -> None:
        super().__init__(detail)
        self.state = state
        self.allowed = tuple(allowed)


class StaleVersion(Conflict):
    code = "version_conflict"

    def __init__(self, kind: str, ref: object, current_version: int) -> None:
        super().__init__(
            f"{kind} {ref} was changed by someone else (now at version {current_version}); reload it and try again.",
        )
        self.current_version = current_version


class Forbidden(DomainError):
    """The actor is known but their role does not allow the action."""

    code = "forbidden"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class TooManyAttempts(DomainError):
    """Sign-in refused for a while after repeated failures."""

    code = "too_many_attempts"
