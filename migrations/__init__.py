"""Numbered SQL migrations, one folder per backend, applied by yoyo (`crm migrate`)."""

from pathlib import Path

POSTGRESQL = Path(__file__).parent / "postgresql"
SQLITE = Path(__file__).parent / "sqlite"
