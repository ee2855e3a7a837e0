"""Signed checkpoints: a statement of the log's head, signed with Ed25519, kept off the database.

Whoever can rewrite the events can also recompute every chain hash; a checkpoint
signed earlier with a key the database never sees still names the old hash at its
position, so `verify_log(checkpoint=...)` catches the rewrite.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from api.audit.verify import Checkpoint, VerifyReport

STATEMENT_KIND = "crm-event-log-checkpoint/1"


class BadCheckpoint(Exception):
    """The checkpoint file is malformed or its signature does not verify."""


def generate_keys(private_path: Path, public_path: Path) -> None:
    """Writes a new Ed25519 key pair as PEM files (the private one readable by its owner only)."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.write_bytes(private_pem)
    private_path.chmod(0o600)
    public_path.write_bytes(public_pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise BadCheckpoint(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise BadCheckpoint(f"{path} is not an Ed25519 public key")
    return key


def _canonical(statement: dict[str, Any]) -> bytes:
    return orjson.dumps(statement, option=orjson.OPT_SORT_KEYS)


def sign_head(
    report: VerifyReport, key: Ed25519PrivateKey, now: datetime | None = None
) -> dict[str, Any]:
    """The signed statement of a verified head (refuses a log that failed verification)."""
    if not report.ok:
        raise BadCheckpoint("the log failed verification; refusing to sign its head")
    statement = {
        "kind": STATEMENT_KIND,
        "position": report.head_position,
        "chain_hash": report.head_hash.hex(),
        "events_checked": report.checked,
        "signed_at": (now or datetime.now(UTC)).isoformat(),
    }
    signature = key.sign(_canonical(statement))
    return {
        "statement": statement,
        "signature": base64.b64encode(signature).decode(),
        "algorithm": "Ed25519",
    }


def read_checkpoint(document: dict[str, Any], key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint a signed document states, once its signature verifies."""
    try:
        statement = document["statement"]
        signature = base64.b64decode(document["signature"], validate=True)
        key.verify(signature, _canonical(statement))
        if statement.get("kind") != STATEMENT_KIND:
            raise BadCheckpoint("not a CRM event-log checkpoint")
        return Checkpoint(
            position=int(statement["position"]),
            chain_hash=bytes.fromhex(statement["chain_hash"]),
        )
    except InvalidSignature:
        raise BadCheckpoint("the checkpoint's signature does not verify") from None
    except (KeyError, TypeError, ValueError) as error:
        raise BadCheckpoint(f"malformed checkpoint: {error}") from None


def write_checkpoint(document: dict[str, Any], path: Path) -> None:
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def load_checkpoint(path: Path, public_key_path: Path) -> Checkpoint:
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise BadCheckpoint(f"{path} is not JSON: {error}") from None
    return read_checkpoint(document, load_public_key(public_key_path))
