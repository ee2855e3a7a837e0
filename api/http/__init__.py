"""The HTTP API over the platform."""

from api.http.app import create_app

__all__ = ["create_app"]
