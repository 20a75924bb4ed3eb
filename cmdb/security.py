"""Passwords and bearer secrets. Argon2id for passwords (argon2-cffi: memory-hard, maintained);
SHA-256 for random tokens, which carry 256 bits of entropy and need no slow hash."""

from __future__ import annotations

import hashlib
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Tests set KEEL_PASSWORD_HASH=fast: the same algorithm with a tiny cost, so a suite that
# signs in hundreds of times stays quick. Never set it in production.
_hasher = (
    PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    if os.environ.get("KEEL_PASSWORD_HASH") == "fast"
    else PasswordHasher()
)
# Verifying against this when the user does not exist keeps sign-in timing uniform.
_DUMMY_HASH = _hasher.hash("keel-timing-equaliser")

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
