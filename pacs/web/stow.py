"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related application/dicom."""

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Add the STOW-RS routes."""
