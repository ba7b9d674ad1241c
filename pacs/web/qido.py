"""QIDO-RS (PS3.18 10.6): search for studies, series and instances."""

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Add the QIDO-RS routes."""
