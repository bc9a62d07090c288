"""API keys: ``Authorization: Bearer <key>``; the key's tenant owns whatever the request touches.

Keys are 256-bit random tokens, so the store keeps only their SHA-256 (a slow password hash
buys nothing against a key nobody can guess, and would cost every request). A key shows up
once, when created; admins see only its ``key_id``.
"""

from __future__ import annotations

import hashlib
import secrets

from fastapi import Request

from .errors import APIError
from .store import Store

PREFIX = "sk-uf-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: Store, tenant: str, name: str = "") -> tuple[str, str]:
    """A new key for ``tenant``; returns (key_id, key). The key is not stored, only its hash."""
    if not tenant or len(tenant) > 64 or not all(c.isalnum() or c in "-_." for c in tenant):
        from ..errors import UserInputError

        raise UserInputError(f"tenant {tenant!r}: use 1-64 letters, digits, '-', '_' or '.'")
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = "key-" + secrets.token_hex(8)
    store.add_key(key_id, hash_key(key), tenant, name)
    return key_id, key


def tenant_of(request: Request) -> str:
    """The tenant behind the request's Bearer key, or a 401."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(401, "Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key")
    store: Store = request.app.state.store
    # Looked up by the key's hash: the secret itself never meets a comparison whose timing could leak it.
    tenant = store.tenant_for_hash(hash_key(key.strip()))
    if tenant is None:
        raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return tenant
