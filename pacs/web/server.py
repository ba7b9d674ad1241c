"""The DICOMweb listener: the application on an aiohttp AppRunner/TCPSite on the archive's loop.

No second process and no signal handling of its own: pacs's `run` owns the signals and
calls `stop`. Without [[web.users]] it listens on loopback only, whatever [web] host says
(the operator learns so at start-up): unauthenticated access is then local only.
"""

import ipaddress
import logging
import ssl

from aiohttp import web

from pacs.config_tls import TlsSettings
from pacs.config_web import WebSettings
from pacs.errors import StartupError
from pacs.web.application import create_app
from pacs.web.keys import WebServices

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Seconds requests in progress get to finish when the server stops.
SHUTDOWN_TIMEOUT = 10.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listening_host(settings: WebSettings) -> str:
    """Where the server listens: [web] host, or loopback when no user is configured."""
    if not settings.users and not _is_loopback(settings.host):
        return LOOPBACK
    return settings.host


def https_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server side of HTTPS with [tls]'s certificate and key (no client certificates)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.certificate, tls.private_key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError("[tls] certificate", f"cannot serve HTTPS with it: {exc}") from exc
    return context


class WebServer:
    """Serves DICOMweb for `services` as `settings` say; OSError from start when it cannot."""

    def __init__(
        self,
        settings: WebSettings,
        services: WebServices,
        tls: ssl.SSLContext | None = None,
        *,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.host = listening_host(settings)
        self._app = create_app(services, settings)
        self._ssl = tls
        self._reuse_port = reuse_port  # a worker beside others on the port (pacs.supervisor)
        self._runner: web.AppRunner | None = None

    @classmethod
    def configured(
        cls,
        settings: WebSettings,
        tls: TlsSettings | None,
        services: WebServices,
        *,
        reuse_port: bool = False,
    ) -> "WebServer | None":
        """The server [web] asks for (HTTPS with [tls] when `tls = true`), or None: off."""
        if not settings.enabled:
            return None
        https = https_context(tls) if tls is not None and settings.tls else None
        return cls(settings, services, https, reuse_port=reuse_port)

    @property
    def port(self) -> int:
        """The configured port (0: any free one)."""
        return self.settings.port or 0

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): with port 0 in the settings, the one the OS chose."""
        assert self._runner is not None, "DICOMweb server not started"
        host, port = self._runner.addresses[0][:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self._ssl else "http"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}{self.settings.base_path}"

    async def start(self) -> None:
        # aiohttp's access log would be a second line per request; handlers log operations.
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(
            runner,
            self.host,
            self.settings.port,
            ssl_context=self._ssl,
            reuse_port=self._reuse_port or None,
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if not self.settings.users:
            log.warning(
                "DICOMweb at %s without [[web.users]]: listening on loopback only, "
                "every local caller may do everything",
                self.url,
            )
        else:
            log.info("DICOMweb at %s, %d users", self.url, len(self.settings.users))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
