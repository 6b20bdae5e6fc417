"""The HTTP API (aiohttp) under /api/v1: app, billing and ops routes."""

from flexd.api.app import build_app, start_api

__all__ = ["build_app", "start_api"]
