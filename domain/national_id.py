"""National IDs are kept only as a keyed hash (to recognise one person) and the last 4."""

from __future__ import annotations

import hashlib
import hmac


def normalise(national_id: str) -> str:
    return "".join(national_id.split()).replace("-", "").upper()


def protect(national_id: str, key: bytes) -> tuple[str, str]:
    """Returns (HMAC-SHA256 hex of the normalised ID, its last 4 characters)."""
    value = normalise(national_id)
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return digest, value[-4:]
