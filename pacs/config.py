"""Settings: one TOML file (plus PACS_DATABASE_URL) validated into frozen dataclasses."""

import dataclasses
import difflib
import math
import os
import re
import socket
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pacs.archive.access import ALL_OPERATIONS, Network, Operation
from pacs.config_access import (
    ACCESS_KEYS,
    PEER_ACCESS_KEYS,
    AccessSettings,
    check_move_destinations,
    moved_called_ae_check,
)
from pacs.config_audit import AUDIT_KEYS, AuditSettings, check_audit
from pacs.config_deidentify import DeidentifyProfile, check_peer_profiles, parse_profiles
from pacs.config_metrics import MetricsSettings, check_metrics, metrics_keys
from pacs.config_tls import (
    TLS_REQUIRED,
    TlsSettings,
    check_tls,
    path,
    tls_keys,
)
from pacs.config_values import Invalid as _Invalid
from pacs.config_values import ae_title as _ae_title
from pacs.config_values import boolean as _boolean
from pacs.config_values import one_of as _one_of
from pacs.config_values import show as _show
from pacs.config_values import text as _text
from pacs.config_web import WebSettings, check_web, parse_web
from pacs.errors import ConfigError
from pacs.index.records import DuplicatePolicy

DATABASE_URL_VARIABLE = "PACS_DATABASE_URL"
DATABASE_DRIVERS = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
_SQLITE_FILE = Path("data/index.sqlite")

_T = TypeVar("_T")
_Parser = Callable[[object], object]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The DIMSE listener: who we are, where we listen, and how long we wait."""

    ae_title: str = "PACS"
    host: str = "0.0.0.0"
    port: int = 11112
    max_associations: int = 64
    max_pdu_length: int = 262144
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The index database, as an SQLAlchemy async URL; its repr hides the password."""

    url: str = field(default_factory=lambda: f"sqlite+aiosqlite:///{_SQLITE_FILE.absolute()}")
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout: float = 30.0
    connect_timeout: float = 10.0
    # Where `url` was set, for messages that tell the admin what to fix.
    url_source: str = "[database] url"

    def __repr__(self) -> str:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["url"] = mask_password(self.url)
        shown = ", ".join(f"{name}={value!r}" for name, value in values.items())
        return f"{type(self).__name__}({shown})"


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """The content-addressed blob store on disk."""

    root: Path = field(default_factory=lambda: Path("data/store").absolute())
    fsync: bool = True
    min_free_bytes: int = 1073741824
    duplicate_policy: DuplicatePolicy = DuplicatePolicy.KEEP


@dataclass(frozen=True, slots=True)
class QuerySettings:
    """C-FIND behaviour: person-name matching and the size of a response."""

    case_insensitive_pn: bool = True
    max_results: int = 0


@dataclass(frozen=True, slots=True)
class CommitmentSettings:
    """Storage Commitment: how to verify, and how long to keep trying to deliver a report."""

    verify: str = "hash"
    retry_interval: float = 5.0
    max_retry_interval: float = 300.0
    report_deadline: float = 86400.0


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """How verbose the log is, and whether lines are text or JSON objects."""

    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote AE: where we reach it (C-MOVE destination, commitment reports), what it may do."""

    ae_title: str
    host: str
    port: int
    allow: frozenset[Operation] = ALL_OPERATIONS
    hosts: tuple[Network, ...] = ()  # addresses it may connect from; empty: any
    move_destinations: frozenset[str] | None = None  # None: any configured peer
    tls: bool = False
    # RFC 4514 subject its certificate must carry on TLS associations ("CN=ws1,O=Hospital").
    certificate_subject: str | None = None
    # The [deidentify.NAME] profile (or "basic") applied to every instance retrieved to it.
    deidentify: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the application is configured with."""

    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    commitment: CommitmentSettings = field(default_factory=CommitmentSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    peers: tuple[Peer, ...] = ()
    access: AccessSettings = field(default_factory=AccessSettings)
    tls: TlsSettings | None = None
    audit: AuditSettings = field(default_factory=AuditSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    web: WebSettings = field(default_factory=WebSettings)
    # De-identification profiles by name, "basic" among them ([deidentify.NAME]).
    deidentify: Mapping[str, DeidentifyProfile] = field(default_factory=lambda: parse_profiles({}))
    # What the admin should change in the file although it loaded (deprecated keys).
    warnings: tuple[str, ...] = ()

    def peer(self, ae_title: str) -> Peer | None:
        """Return the peer with this AE title, or None if it is not configured."""
        # Titles arrive space-padded from the wire (PS3.5 6.2, AE); padding is not significant.
        wanted = ae_title.strip(" ")
        return next((peer for peer in self.peers if peer.ae_title == wanted), None)


def _integer(
    low: int, high: float = math.inf, *, zero_is_unlimited: bool = False
) -> Callable[[object], int]:
    """Build a parser for a TOML integer in [low, high]; bools and floats are refused."""
    wanted = f"an integer from {low} to {high}" if high < math.inf else f"an integer >= {low}"
    wanted = f"0 (unlimited) or {wanted}" if zero_is_unlimited else wanted

    def parse(value: object) -> int:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)  # `port = true` is a mistake, not 1
            and (low <= value <= high or (zero_is_unlimited and value == 0))
        ):
            return value
        raise _Invalid(f"must be {wanted}, got {_show(value)}")

    return parse


def _seconds(value: object) -> float:
    # Comparing before float() also refuses nan, inf and ints too large for a float.
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else 0
    if not 0 < number <= sys.float_info.max:
        raise _Invalid(f"must be a positive number of seconds, got {_show(value)}")
    return float(number)


def _database_url(value: object) -> str:
    url = _text(value)
    if not url.startswith(DATABASE_DRIVERS):
        # Only the scheme is echoed: the rest of a URL may hold a password.
        scheme = repr(url.split("://")[0] + "://...") if "://" in url else "no scheme"
        drivers = " or ".join(DATABASE_DRIVERS)
        raise _Invalid(f"must start with {drivers} (the supported drivers), got {scheme}")
    return url


# SQLAlchemy's URL grammar: the password runs from the first ':' after the user name
# to the first '@'. A `password=` query parameter is passed to the driver as well.
_URL_PASSWORD = re.compile(r"^([\w+]+://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*")


def mask_password(url: str) -> str:
    """Return a database URL with its password, if any, shown as ***."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url, count=1))


_KEYS: Mapping[str, Mapping[str, _Parser]] = {
    "server": {
        "ae_title": _ae_title,
        "host": _text,
        "port": _integer(0, 65535),
        "max_associations": _integer(1),
        # The PDU length field has 4 bytes (PS3.8 9.3.1); under 4096 too little fits in a PDU.
        "max_pdu_length": _integer(4096, 2**32 - 1, zero_is_unlimited=True),
        "acse_timeout": _seconds,
        "dimse_timeout": _seconds,
        "network_timeout": _seconds,
    },
    "database": {
        "url": _database_url,
        "pool_size": _integer(1),
        "max_overflow": _integer(0),
        "pool_timeout": _seconds,
        "connect_timeout": _seconds,
    },
    "storage": {
        "root": path,
        "fsync": _boolean,
        "min_free_bytes": _integer(0),
        "duplicate_policy": _one_of(list(DuplicatePolicy)),
    },
    "query": {"case_insensitive_pn": _boolean, "max_results": _integer(0)},
    "commitment": {
        "verify": _one_of(["hash", "exists"]),
        "retry_interval": _seconds,
        "max_retry_interval": _seconds,
        "report_deadline": _seconds,
    },
    "logging": {"level": _one_of(LOG_LEVELS), "format": _one_of(LOG_FORMATS)},
    "peers": {
        "ae_title": _ae_title,
        "host": _text,
        "port": _integer(1, 65535),
        "tls": _boolean,
        "certificate_subject": _text,
        "deidentify": _text,
    },
    "access": ACCESS_KEYS,
    "audit": AUDIT_KEYS,
    "tls": tls_keys(_integer(0, 65535), _seconds),
    "metrics": metrics_keys(_integer(0, 65535)),
    "web": {},  # parsed by config_web, which needs the peers
    "deidentify": {},  # profiles by name: parsed by config_deidentify
}
_PEER_REQUIRED = ("ae_title", "host", "port")


def _check_known(table: Mapping[str, object], known: Sequence[str], where: str = "") -> None:
    """Refuse the first unknown key, suggesting the nearest known one."""
    for key, value in table.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            if not where and isinstance(value, dict):
                raise _Invalid(f"unknown table [{key}]{hint}")
            raise _Invalid(f"unknown key {where}{' ' if where else ''}{key}{hint}")


def _parse_table(
    cls: Callable[..., _T],
    table: object,
    where: str,
    spec: Mapping[str, _Parser],
    required: bool | Sequence[str],
) -> _T:
    """Parse each key of one TOML table with its parser; absent keys keep the field default.

    `required`: True when every key must be present, or the keys that must be.
    """
    if not isinstance(table, dict):
        raise _Invalid(f"{where}: must be a table, got {_show(table)}")
    _check_known(table, list(spec), where)
    needed = list(spec) if required is True else list(required or ())
    if missing := [key for key in needed if key not in table]:
        raise _Invalid(f"{where}: missing key {', '.join(missing)}")
    values: dict[str, object] = {}
    for key, raw in table.items():
        try:
            values[key] = spec[key](raw)
        except _Invalid as exc:
            raise _Invalid(f"{where} {key}: {exc}") from None
    # Each value has been through its key's parser, so it has its field's type.
    return cls(**values)


def _parse_peers(tables: object) -> tuple[Peer, ...]:
    """Parse [[peers]]; messages number them from 1, in file order."""
    if not isinstance(tables, list):
        raise _Invalid(f"[[peers]]: must be an array of tables, got {_show(tables)}")
    peers: list[Peer] = []
    for n, table in enumerate(tables, 1):
        where = f"[[peers]][{n}]"
        peer = _parse_peer(table, where)
        if clash := next((m for m, p in enumerate(peers, 1) if p.ae_title == peer.ae_title), 0):
            raise _Invalid(
                f"{where} ae_title: duplicate {peer.ae_title!r}, already in [[peers]][{clash}]"
            )
        peers.append(peer)
    check_move_destinations(peers)
    return tuple(peers)


def _parse_peer(table: object, where: str) -> Peer:
    """Parse one [[peers]] table: its address keys (required), then its optional permissions."""
    if not isinstance(table, dict):
        raise _Invalid(f"{where}: must be a table, got {_show(table)}")
    _check_known(table, [*_KEYS["peers"], *PEER_ACCESS_KEYS], where)
    address = {key: value for key, value in table.items() if key not in PEER_ACCESS_KEYS}
    peer = _parse_table(Peer, address, where, _KEYS["peers"], required=_PEER_REQUIRED)
    rules = {key: value for key, value in table.items() if key in PEER_ACCESS_KEYS}
    parsed: dict[str, object] = _parse_table(dict, rules, where, PEER_ACCESS_KEYS, False)
    # Each value has been through its key's parser, so it has its field's type.
    return dataclasses.replace(peer, **parsed)  # type: ignore[arg-type]


def _parse_audit(table: object) -> AuditSettings:
    audit = _parse_table(AuditSettings, table, "[audit]", _KEYS["audit"], required=False)
    check_audit(audit)
    return audit


def _parse_document(document: dict[str, object]) -> Settings:
    _check_known(document, list(_KEYS))
    warnings = moved_called_ae_check(document)

    def section(cls: Callable[..., _T], name: str) -> _T:
        return _parse_table(cls, document.get(name, {}), f"[{name}]", _KEYS[name], required=False)

    server = section(ServerSettings, "server")
    peers = _parse_peers(document.get("peers", []))
    tls = None
    if (table := document.get("tls")) is not None:
        tls = _parse_table(TlsSettings, table, "[tls]", _KEYS["tls"], required=TLS_REQUIRED)
    check_tls(tls, peers, server.port)
    metrics = section(MetricsSettings, "metrics")
    ports = {"[server] port": server.port, **({"[tls] port": tls.port} if tls else {})}
    check_metrics(metrics, ports)
    web = parse_web(document.get("web", {}), _integer(0, 65535), [p.ae_title for p in peers])
    check_web(web, tls is not None, {**ports, "[metrics] port": metrics.port or 0})
    profiles = parse_profiles(document.get("deidentify", {}))
    check_peer_profiles([(p.ae_title, p.deidentify) for p in peers], profiles)
    return Settings(
        server=server,
        database=section(DatabaseSettings, "database"),
        storage=section(StorageSettings, "storage"),
        query=section(QuerySettings, "query"),
        commitment=section(CommitmentSettings, "commitment"),
        logging=section(LoggingSettings, "logging"),
        peers=peers,
        access=section(AccessSettings, "access"),
        tls=tls,
        warnings=warnings,
        audit=_parse_audit(document.get("audit", {})),
        metrics=metrics,
        web=web,
        deidentify=profiles,
    )


def _read_document(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate `path` (None: all defaults); PACS_DATABASE_URL overrides [database] url.

    Relative paths become absolute against the current directory now, so a later chdir
    cannot move the store. Every problem is a ConfigError naming the file, key and reason.
    """
    document = _read_document(path) if path is not None else {}
    try:
        settings = _parse_document(document)
    except _Invalid as exc:
        raise ConfigError(f"{path}: {exc}") from None
    environ = os.environ if environ is None else environ
    if url := environ.get(DATABASE_URL_VARIABLE, "").strip():
        try:
            database = dataclasses.replace(
                settings.database, url=_database_url(url), url_source=DATABASE_URL_VARIABLE
            )
            settings = dataclasses.replace(settings, database=database)
        except _Invalid as exc:
            raise ConfigError(f"environment variable {DATABASE_URL_VARIABLE}: {exc}") from None
    return settings


def check_listen_host(settings: Settings, path: Path | None) -> None:
    """Raise ConfigError unless [server] host resolves to an address to listen on.

    Not part of load_settings, which reads only the file: this asks the resolver.
    """
    host = settings.server.host
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f"{path}: " if path is not None else ""
        raise ConfigError(
            f"{where}[server] host: {host!r} does not resolve to an address ({cause})"
        ) from None
