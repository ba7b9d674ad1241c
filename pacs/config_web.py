"""Settings of the DICOMweb server: [web] and its [[web.users]] (off unless a port is set).

A user authenticates with HTTP basic (`password_hash`) or a bearer token (`token_sha256`)
and acts with the permissions of one [[peers]] entry (`peer`): its `allow` and `hosts`.
The file holds hashes only, never a password or token (`python -m pacs.web.credentials`).
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pacs.config_values import Invalid, boolean, show, text

DEFAULT_BASE_PATH = "/dicom-web"
_TOKEN_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PASSWORD_HASH = re.compile(r"^pbkdf2_sha256\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")


@dataclass(frozen=True, slots=True)
class WebUser:
    """A DICOMweb client: its credentials (hashed) and the peer whose permissions it has."""

    name: str
    peer: str
    password_hash: str | None = None
    token_sha256: str | None = None

    def __repr__(self) -> str:
        # Hashes stay out of logs and tracebacks as well.
        return f"WebUser(name={self.name!r}, peer={self.peer!r})"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Where the DICOMweb server listens, under which path, for whom; no port: no server."""

    host: str = "0.0.0.0"
    port: int | None = None
    base_path: str = DEFAULT_BASE_PATH
    cors_origins: tuple[str, ...] = ()  # origins a browser may call from; "*" for any
    tls: bool = False  # serve HTTPS with [tls] certificate and private_key
    # The base URL clients reach the service at (behind a reverse proxy), for RetrieveURL;
    # None: from the request's scheme and Host header, and base_path.
    public_url: str | None = None
    users: tuple[WebUser, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.port is not None


def base_path(value: object) -> str:
    """A URL path prefix: '/' or '' for the root, else '/a/b' (a trailing '/' is dropped)."""
    path = text(value).rstrip("/")
    if path and (not path.startswith("/") or "//" in path or any(c in path for c in "?#{} ")):
        raise Invalid(f"must be a URL path such as {DEFAULT_BASE_PATH!r}, got {show(value)}")
    return path


def origins(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"must be a list of origins, got {show(value)}")
    parsed = tuple(text(item).rstrip("/") for item in value)
    for origin in parsed:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
            raise Invalid(
                f'must be origins such as "https://viewer.example.org" or "*", got {origin!r}'
            )
    return parsed


def public_url(value: object) -> str:
    url = text(value).rstrip("/")
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", url):
        raise Invalid(f'must be a URL such as "https://pacs.example.org/dicom-web", got {url!r}')
    return url


def _token_sha256(value: object) -> str:
    digest = text(value).lower()
    if not _TOKEN_SHA256.match(digest):
        raise Invalid("must be the SHA-256 of the token in hex (64 characters)")
    return digest


def _password_hash(value: object) -> str:
    hashed = text(value)
    if not _PASSWORD_HASH.match(hashed):
        raise Invalid(
            'must be "pbkdf2_sha256$iterations$salt$hash" (python -m pacs.web.credentials)'
        )
    return hashed


USER_KEYS: Mapping[str, Callable[[object], object]] = {
    "name": text,
    "peer": text,
    "password_hash": _password_hash,
    "token_sha256": _token_sha256,
}


def web_keys(port: Callable[[object], int]) -> Mapping[str, Callable[[object], object]]:
    """The [web] keys and their parsers ([[web.users]] is parsed by `parse_users`)."""
    return {
        "host": text,
        "port": port,
        "base_path": base_path,
        "cors_origins": origins,
        "tls": boolean,
        "public_url": public_url,
        "users": lambda value: value,  # parsed by parse_users, which needs the peers
    }


def parse_web(table: object, port: Callable[[object], int], peers: Sequence[str]) -> WebSettings:
    """Parse [web] and its [[web.users]] (`peers`: the configured peers' AE titles)."""
    if not isinstance(table, dict):
        raise Invalid(f"[web]: must be a table, got {show(table)}")
    keys = web_keys(port)
    values: dict[str, object] = {}
    for key, raw in table.items():
        if key not in keys:
            raise Invalid(f"unknown key [web] {key}")
        if key == "users":
            values[key] = parse_users(raw, peers)
            continue
        try:
            values[key] = keys[key](raw)
        except Invalid as exc:
            raise Invalid(f"[web] {key}: {exc}") from None
    return WebSettings(**values)  # type: ignore[arg-type]  # each value has its field's type


def _user(table: object, where: str) -> WebUser:
    if not isinstance(table, dict):
        raise Invalid(f"{where}: must be a table, got {show(table)}")
    for key in table:
        if key not in USER_KEYS:
            raise Invalid(f"unknown key {where} {key}")
    for key in ("name", "peer"):
        if key not in table:
            raise Invalid(f"{where}: missing key {key}")
    values: dict[str, str] = {}
    for key, raw in table.items():
        try:
            values[key] = str(USER_KEYS[key](raw))
        except Invalid as exc:
            raise Invalid(f"{where} {key}: {exc}") from None
    if "password_hash" not in values and "token_sha256" not in values:
        raise Invalid(f"{where}: needs password_hash or token_sha256")
    return WebUser(**values)


def parse_users(tables: object, peers: Sequence[str]) -> tuple[WebUser, ...]:
    """Parse [[web.users]]; each names a configured peer, and no name or token is used twice."""
    if not isinstance(tables, list):
        raise Invalid(f"[[web.users]]: must be an array of tables, got {show(tables)}")
    users: list[WebUser] = []
    for n, table in enumerate(tables, 1):
        where = f"[[web.users]][{n}]"
        user = _user(table, where)
        if user.peer not in peers:
            raise Invalid(f"{where} peer: {user.peer!r} is not a configured peer's ae_title")
        if any(u.name == user.name for u in users):
            raise Invalid(f"{where} name: duplicate {user.name!r}")
        if user.token_sha256 and any(u.token_sha256 == user.token_sha256 for u in users):
            raise Invalid(f"{where} token_sha256: another user has the same token")
        users.append(user)
    return tuple(users)


def check_web(web: WebSettings, tls_configured: bool, ports: Mapping[str, int]) -> None:
    """Refuse what cannot work: HTTPS without [tls], a port another listener has."""
    if web.tls and not tls_configured:
        raise Invalid("[web] tls: needs a [tls] table (its certificate and private_key)")
    if web.port is None:
        if web.users or web.cors_origins:
            raise Invalid("[web] port: set it to serve DICOMweb (the other [web] keys need it)")
        return
    for key, port in ports.items():
        if web.port != 0 and web.port == port:
            raise Invalid(f"[web] port: {port} is already the {key}")
