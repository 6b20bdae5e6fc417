"""Bearer tokens checked by SHA-256 digest, each with a role and, for app tokens, an account."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from aiohttp import web

from flexd.config import TokenConfig

TOKEN: web.RequestKey[TokenConfig] = web.RequestKey("token", TokenConfig)


def authenticate(header: str | None, tokens: Sequence[TokenConfig]) -> TokenConfig | None:
    """The token matching an ``Authorization: Bearer`` header, or None."""
    if not header or not header.startswith("Bearer "):
        return None
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    found = None
    # Compare against every token so the time taken does not reveal which one matched.
    for t in tokens:
        if hmac.compare_digest(digest, t.sha256):
            found = t
    return found


def may_use_device(token: TokenConfig, account: str) -> bool:
    if token.role == "admin":
        return True
    return token.role == "app" and token.account == account
