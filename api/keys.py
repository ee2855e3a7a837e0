"""API keys: created by `crm keys create`, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from api.store.database import Database

ROLES = ("ingest", "read", "mailing", "audit", "admin", "customer")


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    role: str
    customer_id: str | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    db: Database, role: str, customer_id: str | None = None, label: str | None = None
) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if (role == "customer") != (customer_id is not None):
        raise ValueError(
            "a customer key needs --customer-id, and only a customer key takes one"
        )
    key = "crm_" + secrets.token_urlsafe(32)
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO api_keys (key_hash, key_prefix, role, customer_id, label) VALUES (%s, %s, %s, %s, %s)",
            (_hash(key), key[:10], role, customer_id, label),
        )
    return key


def revoke_key(db: Database, key_or_prefix: str) -> int:
    """Revokes a key given in full, or every key with that printed prefix."""
    with db.transaction() as cur:
        cur.execute(
            "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE revoked_at IS NULL AND (key_hash = %s OR key_prefix = %s)",
            (_hash(key_or_prefix), key_or_prefix),
        )
        return cur.rowcount


def authenticate(db: Database, key: str) -> ApiKey | None:
    with db.transaction() as cur:
        row = cur.execute(
            "SELECT key_prefix, role, customer_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (_hash(key),),
        ).fetchone()
    return (
        None
        if row is None
        else ApiKey(row["key_prefix"], row["role"], row["customer_id"])
    )
