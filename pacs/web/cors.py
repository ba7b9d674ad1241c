"""CORS (Fetch standard): which browser origins may call, answered per request and preflight.

Off unless [web] cors_origins lists origins. A preflight (OPTIONS with
Access-Control-Request-Method) is answered by the middleware, before authentication:
browsers send it without credentials. Other responses get their headers as they are
prepared (`on_response_prepare`), so streamed ones and errors get them too.
"""

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Accept, Content-Type, Range"
EXPOSED_HEADERS = "Content-Type, Content-Length, Content-Location, Location, Warning"
PREFLIGHT_MAX_AGE = "600"


class Cors:
    """The CORS answers for `origins` ("*": any origin)."""

    def __init__(self, origins: Sequence[str]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(origins)

    def _allowed(self, request: web.BaseRequest) -> str | None:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and (self._any or origin in self._origins):
            return origin
        return None

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._preflight)
        app.on_response_prepare.append(self._headers)

    @web.middleware
    async def _preflight(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        asked = hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
        if request.method != hdrs.METH_OPTIONS or not asked:
            return await handler(request)
        response = web.Response(status=204)
        if self._allowed(request) is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ALLOWED_METHODS
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ALLOWED_HEADERS
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = PREFLIGHT_MAX_AGE
        return response

    async def _headers(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)
        origin = self._allowed(request)
        if origin is None:
            return
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        if request.method != hdrs.METH_OPTIONS:
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED_HEADERS
