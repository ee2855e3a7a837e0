"""API keys: created by `crm keys create`, stored only as SHA-256 hashes.

Requests authenticate through a short-lived cache of keys found valid
(`authenticate_cached`): a key revoked by another process (`crm keys revoke`)
keeps working for at most `KEY_CACHE_SECONDS`; a revocation in this process
(`revoke_key`) takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from api.store.database import Database

ROLES = ("ingest", "read", "mailing", "audit", "admin", "customer")

KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 1024


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
        count = cur.rowcount
    key_cache(db).clear()
    return count


def _lookup(db: Database, key_hash: str) -> ApiKey | None:
    with db.read() as cur:
        row = cur.execute(
            "SELECT key_prefix, role, customer_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (key_hash,),
        ).fetchone()
    return (
        None
        if row is None
        else ApiKey(row["key_prefix"], row["role"], row["customer_id"])
    )


def authenticate(db: Database, key: str) -> ApiKey | None:
    """The key's current record in the database (None if unknown or revoked)."""
    return _lookup(db, _hash(key))


class KeyCache:
    """Valid keys seen in the last `ttl` seconds, by the SHA-256 of the key (the
    key itself is never kept). Unknown and revoked keys are not cached, so a new
    key works at once; at most `max_size` keys are kept, the oldest dropped first."""

    def __init__(
        self,
        ttl: float = KEY_CACHE_SECONDS,
        max_size: int = KEY_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._generation = 0

    def recent(self, key: str) -> ApiKey | None:
        """The key if it was found valid less than `ttl` seconds ago (no database)."""
        entry = self._entries.get(_hash(key))
        if entry is not None and self.clock() < entry[1]:
            return entry[0]
        return None

    def authenticate(self, db: Database, key: str) -> ApiKey | None:
        key_hash = _hash(key)
        entry = self._entries.get(key_hash)
        if entry is not None and self.clock() < entry[1]:
            return entry[0]
        generation = self._generation
        found = _lookup(db, key_hash)
        with self._lock:
            # A clear() during the lookup may be a revocation the lookup missed.
            if found is None or generation != self._generation:
                self._entries.pop(key_hash, None)
                return found
            self._entries.pop(
                key_hash, None
            )  # re-inserted last: entries stay in expiry order
            self._entries[key_hash] = (found, self.clock() + self.ttl)
            while len(self._entries) > self.max_size:
                del self._entries[next(iter(self._entries))]
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


_caches: weakref.WeakKeyDictionary[Database, KeyCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def key_cache(db: Database) -> KeyCache:
    """The key cache of this database handle (one per platform)."""
    cache = _caches.get(db)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(db, KeyCache())
    return cache


def authenticate_cached(db: Database, key: str) -> ApiKey | None:
    """`authenticate`, answered from `key_cache(db)` for keys found valid recently."""
    return key_cache(db).authenticate(db, key)
