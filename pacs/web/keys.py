"""The services a DICOMweb endpoint finds on its application, under typed keys.

An endpoint module reads `request.app[QUERIES]` and the like; `application.create_app`
puts every one of them there, so a handler never builds a service of its own.
"""

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from pacs.archive.access import AccessPolicy
from pacs.archive.ingest import Ingest
from pacs.archive.query import QueryService
from pacs.archive.retrieve import RetrieveService
from pacs.archive.wado import WadoService
from pacs.audit.auditor import Auditor


@dataclass(frozen=True, slots=True)
class WebServices:
    """What the composition root hands the web server: the archive's use cases."""

    queries: QueryService
    ingest: Ingest
    retrieve: RetrieveService
    auditor: Auditor
    # The access policy in force (replaced on SIGHUP), asked on every request.
    policy: Callable[[], AccessPolicy]
    # The Storage SOP Classes C-STORE accepts; STOW-RS refuses any other.
    storage_classes: frozenset[str]
    wado: WadoService | None = None


QUERIES = web.AppKey("queries", QueryService)
INGEST = web.AppKey("ingest", Ingest)
RETRIEVE = web.AppKey("retrieve", RetrieveService)
AUDITOR = web.AppKey("auditor", Auditor)
WADO = web.AppKey("wado", WadoService)
# The URL prefix of every route ('' or '/dicom-web'), for RetrieveURL and the like.
BASE_PATH = web.AppKey("base_path", str)
# The base URL of RetrieveURLs when [web] public_url sets one ('' when not).
PUBLIC_URL = web.AppKey("public_url", str)
SERVICES = web.AppKey("services", WebServices)


def route(app: web.Application, tail: str) -> str:
    """The path of a route: `tail` ('/studies/{study}') under the configured base path."""
    return f"{app[BASE_PATH]}{tail}"


def base_url(request: web.Request) -> str:
    """The URL clients reach the routes at (RetrieveURL, BulkDataURI): [web] public_url,
    else the request's. Some clients (dicomweb-client) send a Host header without the port
    they connected to; the socket's port is added then, unless it is the scheme's default.
    Behind a reverse proxy, `public_url` says what the proxy's clients use."""
    app = request.app
    if app[PUBLIC_URL]:
        return app[PUBLIC_URL]
    host = request.host
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    default = 443 if request.scheme == "https" else 80
    if ":" not in host.rpartition("]")[2] and sockname and sockname[1] != default:
        host = f"{host}:{sockname[1]}"
    return f"{request.scheme}://{host}{app[BASE_PATH]}"
