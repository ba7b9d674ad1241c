"""The aiohttp application: middlewares, services under their keys, every endpoint's routes.

An endpoint module exposes `add_routes(app)` and is listed in ENDPOINTS; its handlers
find the archive's services under the keys of `pacs.web.keys` and call `auth.require`
with the operation they perform.
"""

from collections.abc import Callable

from aiohttp import web

from pacs.config_web import WebSettings
from pacs.web import qido, stow, wado_routes
from pacs.web.auth import Authenticator, auth_middleware
from pacs.web.cors import Cors
from pacs.web.errors import error_middleware
from pacs.web.keys import (
    AUDITOR,
    BASE_PATH,
    INGEST,
    PUBLIC_URL,
    QUERIES,
    RETRIEVE,
    SERVICES,
    WADO,
    WebServices,
)

ENDPOINTS: tuple[Callable[[web.Application], None], ...] = (
    qido.add_routes,
    stow.add_routes,
    wado_routes.add_routes,
)


def create_app(services: WebServices, settings: WebSettings) -> web.Application:
    """The DICOMweb application for these services, with every route under base_path."""
    # A QIDO request line with a long includefield list can pass aiohttp's 8 KiB default.
    app = web.Application(handler_args={"max_line_size": 32768})
    if settings.cors_origins:
        Cors(settings.cors_origins).install(app)  # first: preflights carry no credentials
    app.middlewares.append(auth_middleware(Authenticator(settings.users, services.policy)))
    app.middlewares.append(error_middleware)
    app[SERVICES] = services
    app[QUERIES] = services.queries
    app[INGEST] = services.ingest
    app[RETRIEVE] = services.retrieve
    app[AUDITOR] = services.auditor
    if services.wado is not None:
        app[WADO] = services.wado
    app[BASE_PATH] = settings.base_path
    app[PUBLIC_URL] = settings.public_url or ""
    for add_routes in ENDPOINTS:
        add_routes(app)
    return app
