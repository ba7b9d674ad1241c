"""load_settings: defaults, every key, the environment override and the error messages."""

from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path

import pytest

from pacs.archive.access import ALL_OPERATIONS, Operation
from pacs.config import (
    DatabaseSettings,
    LoggingSettings,
    Peer,
    ServerSettings,
    Settings,
    StorageSettings,
    load_settings,
    mask_password,
)
from pacs.config_access import AccessSettings
from pacs.config_audit import AuditSettings
from pacs.config_metrics import MetricsSettings
from pacs.errors import ConfigError
from pacs.index.records import DuplicatePolicy

EXAMPLE_CONFIG = Path(__file__).parents[2] / "config" / "pacs.toml"

EVERY_KEY = """
peers = [
    { ae_title = "VIEWER", host = "viewer.lan", port = 11113, allow = ["find", "Move"], hosts = [
      "10.0.0.5", "fd00::/64"], move_destinations = ["CT1"] },  # an inline table is one line
    { ae_title = "CT1", host = "10.0.0.5", port = 104 },
]

[server]
ae_title = "ARCHIVE"
host = "127.0.0.1"
port = 104
max_associations = 8
max_pdu_length = 0
acse_timeout = 5
dimse_timeout = 6.5
network_timeout = 7.0

[access]
unknown_peers = ["echo"]
check_called_ae_title = true

[database]
url = "sqlite+aiosqlite:///data/x.sqlite"  # relative, so kept as written

[storage]
root = "/srv/pacs/store"
fsync = false
min_free_bytes = 0
duplicate_policy = "reject"

[logging]
level = "debug"
"""

Write = Callable[[str], Path]
Load = Callable[[str], Settings]
Refuse = Callable[[str], str]

POSTGRES_URL = "postgresql+asyncpg://pacs@127.0.0.1/pacs"
PEER = '[[peers]]\nae_title = "WS"\nhost = "h"\nport = 1\n\n'


@pytest.fixture
def write_config(tmp_path: Path) -> Write:
    def write(text: str) -> Path:
        path = tmp_path / "pacs.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(write_config: Write) -> Load:
    return lambda text: load_settings(write_config(text), environ={})


@pytest.fixture
def config_error(write_config: Write) -> Refuse:
    """Load text that must be refused; the message names the file, shortened here to its name."""

    def refuse(text: str) -> str:
        path = write_config(text)
        with pytest.raises(ConfigError) as caught:
            load_settings(path, environ={})
        return str(caught.value).replace(str(path), path.name)

    return refuse


def test_no_file_or_an_empty_one_gives_the_defaults_with_paths_under_the_working_directory(
    load: Load, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings(None, environ={})

    # The example config spells out every default; its test pins the values.
    assert settings == Settings()
    assert (settings.server.ae_title, settings.server.port, settings.peers) == ("PACS", 11112, ())
    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'index.sqlite'}"
    assert settings.storage.root == tmp_path / "data" / "store"
    assert load("") == settings


def test_every_key_is_read_from_the_file(load: Load) -> None:
    settings = load(EVERY_KEY)

    assert type(settings.server.acse_timeout) is float  # written as the integer 5
    assert settings == Settings(
        server=ServerSettings(
            ae_title="ARCHIVE",
            host="127.0.0.1",
            port=104,
            max_associations=8,
            max_pdu_length=0,
            acse_timeout=5.0,
            dimse_timeout=6.5,
            network_timeout=7.0,
        ),
        database=DatabaseSettings(url="sqlite+aiosqlite:///data/x.sqlite"),
        storage=StorageSettings(
            root=Path("/srv/pacs/store"),
            fsync=False,
            min_free_bytes=0,
            duplicate_policy=DuplicatePolicy.REJECT,
        ),
        logging=LoggingSettings(level="DEBUG"),
        peers=(
            Peer(
                "VIEWER",
                "viewer.lan",
                11113,
                allow=frozenset({Operation.FIND, Operation.MOVE}),
                hosts=(ip_network("10.0.0.5/32"), ip_network("fd00::/64")),
                move_destinations=frozenset({"CT1"}),
            ),
            Peer("CT1", "10.0.0.5", 104),
        ),
        access=AccessSettings(frozenset({Operation.ECHO}), check_called_ae_title=True),
    )


def test_relative_storage_root_is_made_absolute_against_the_working_directory(
    load: Load, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")

    assert load('[storage]\nroot = "blobs"').storage.root == tmp_path / "work" / "blobs"


def test_ae_titles_are_stripped_and_choices_read_case_insensitively(load: Load) -> None:
    text = '[server]\nae_title = " PACS  "\n[storage]\nduplicate_policy = "Replace"\n'
    settings = load(text + '[logging]\nlevel = "warning"\n' + PEER.replace('"WS"', '"CT1 "'))

    assert (settings.server.ae_title, settings.peers[0].ae_title) == ("PACS", "CT1")
    assert settings.storage.duplicate_policy is DuplicatePolicy.REPLACE
    assert settings.logging.level == "WARNING"


@pytest.mark.parametrize(
    ("text", "variable", "expected"),
    [
        (EVERY_KEY, POSTGRES_URL, POSTGRES_URL),
        ("", POSTGRES_URL, POSTGRES_URL),
        (EVERY_KEY, "", "sqlite+aiosqlite:///data/x.sqlite"),
    ],
    ids=["overrides the file", "overrides the default", "ignored when empty"],
)
def test_database_url_from_environment_overrides_the_file_unless_empty(
    write_config: Write, text: str, variable: str, expected: str
) -> None:
    settings = load_settings(write_config(text), environ={"PACS_DATABASE_URL": variable})

    assert settings.database.url == expected


def test_bad_database_url_in_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^environment variable PACS_DATABASE_URL: must start"):
        load_settings(None, environ={"PACS_DATABASE_URL": "mysql://root@db/pacs"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[server]\nport = "abc"', "[server] port: must be an integer from 0 to 65535, got 'abc'"),
        ("[server]\nprot = 104", "unknown key [server] prot (did you mean port?)"),
        ("[tsl]\nport = 2762", "unknown table [tsl] (did you mean tls?)"),
        ("debug = true", "unknown key debug"),
        ("server = 3", "[server]: must be a table, got 3"),
        (
            '[storage]\nduplicate_policy = "maybe"',
            "[storage] duplicate_policy: must be one of keep, replace, reject, got 'maybe'",
        ),
        (
            '[database]\nurl = "postgresql://pacs:s3cret@db/pacs"',
            "[database] url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            " (the supported drivers), got 'postgresql://...'",
        ),
        ('[peers]\nae_title = "CT1"', "[[peers]]: must be an array of tables, got a table"),
        (
            PEER + PEER.replace("port = 1", "port = 2"),
            "[[peers]][2] ae_title: duplicate 'WS', already in [[peers]][1]",
        ),
    ],
)
def test_error_names_the_file_the_key_and_the_reason(
    config_error: Refuse, text: str, expected: str
) -> None:
    assert config_error(text) == f"pacs.toml: {expected}"


@pytest.mark.parametrize(
    ("table", "key", "value", "reason"),
    [
        ("server", "port", "70000", "must be an integer from 0 to 65535, got 70000"),
        ("server", "port", "true", "must be an integer from 0 to 65535, got true"),
        ("server", "port", "104.0", "must be an integer from 0 to 65535, got 104.0"),
        ("server", "max_associations", "0", "must be an integer >= 1, got 0"),
        ("server", "max_pdu_length", "100", "must be 0 (unlimited) or an integer from 4096 to"),
        ("server", "max_pdu_length", "4294967296", "must be 0 (unlimited) or an integer"),
        ("server", "acse_timeout", "0", "must be a positive number of seconds, got 0"),
        ("server", "dimse_timeout", '"60"', "must be a positive number of seconds, got '60'"),
        ("server", "network_timeout", "inf", "must be a positive number of seconds, got inf"),
        ("server", "network_timeout", "nan", "must be a positive number of seconds, got nan"),
        ("server", "host", '" "', "must be a non-blank string, got ' '"),
        ("server", "check_called_ae_title", '"yes"', "must be true or false, got 'yes'"),
        ("storage", "fsync", "1", "must be true or false, got 1"),
        ("storage", "min_free_bytes", "-1", "must be an integer >= 0, got -1"),
        ("storage", "root", "5", "must be a non-blank string, got 5"),
        ("logging", "level", '"TRACE"', "must be one of DEBUG, INFO, WARNING, ERROR, got 'TRACE'"),
    ],
)
def test_bad_value_names_the_key_and_the_reason(
    config_error: Refuse, table: str, key: str, value: str, reason: str
) -> None:
    message = config_error(f"[{table}]\n{key} = {value}")

    assert message.startswith(f"pacs.toml: [{table}] {key}: {reason}")


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        ("ABCDEFGHIJKLMNOPQ", "must be at most 16 characters"),
        ("A\\\\B", "must be printable ASCII without backslash or control characters"),
        ("A\\tB", "must be printable ASCII without backslash or control characters"),
        ("PACSÉ", "must be printable ASCII"),
        ("    ", "must be a non-blank string, got '    '"),
    ],
)
def test_bad_ae_title_is_refused(config_error: Refuse, title: str, reason: str) -> None:
    message = config_error(f'[server]\nae_title = "{title}"')

    assert message.startswith(f"pacs.toml: [server] ae_title: {reason}")


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ('ae_title = "CT1"\nhost = "h"', "[[peers]][2]: missing key port"),
        ('ae_title = "CT1"\nhost = "h"\nport = 0', "[[peers]][2] port: must be an integer from 1"),
        ('ae_title = "CT1"\nhost = ""\nport = 1', "[[peers]][2] host: must be a non-blank string"),
        ('ae_title = "A\\\\B"\nhost = "h"\nport = 1', "[[peers]][2] ae_title: must be printable"),
        ('ae_title = "CT1"\nhost = "h"\nport = 1\naet = "X"', "unknown key [[peers]][2] aet"),
    ],
)
def test_bad_peer_is_named_by_its_position(config_error: Refuse, peer: str, expected: str) -> None:
    assert config_error(f"{PEER}[[peers]]\n{peer}").startswith(f"pacs.toml: {expected}")


def test_invalid_toml_is_reported_with_the_parser_message(config_error: Refuse) -> None:
    message = config_error("[server\nport = 1")

    assert message.startswith("pacs.toml: not valid TOML: ")
    assert "line 1" in message


def test_file_that_is_not_utf8_is_reported_as_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nae_title = "\xc9"')

    with pytest.raises(ConfigError, match=r"latin1\.toml: not valid TOML: "):
        load_settings(path, environ={})


def test_missing_file_is_reported_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == f"{path}: cannot read: No such file or directory"


def test_peer_lookup_ignores_padding_from_the_wire_but_not_case(load: Load) -> None:
    settings = load(EVERY_KEY)
    ct1 = Peer(ae_title="CT1", host="10.0.0.5", port=104)

    found = [settings.peer(title) for title in ("CT1", "CT1   ", "ct1", "CT2")]

    assert found == [ct1, ct1, None, None]


def test_example_config_is_valid_keeps_an_audit_trail_and_otherwise_spells_out_the_defaults() -> (
    None
):
    settings = load_settings(EXAMPLE_CONFIG, environ={})

    workstation = Peer(
        "WORKSTATION",
        "127.0.0.1",
        11113,
        allow=frozenset({Operation.ECHO, Operation.FIND, Operation.GET, Operation.MOVE}),
        hosts=(ip_network("127.0.0.1"),),
        move_destinations=frozenset({"WORKSTATION", "VIEWER"}),
    )
    ct1_store_only = frozenset({Operation.ECHO, Operation.STORE, Operation.COMMIT})
    assert settings == Settings(
        peers=(
            workstation,
            Peer("CT1", "127.0.0.1", 11114, allow=ct1_store_only),
            Peer("VIEWER", "127.0.0.1", 11115, allow=frozenset()),
        ),
        audit=AuditSettings(file=Path("data/audit.jsonl").absolute()),
    )


def test_query_commitment_and_pool_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "pacs.toml"
    path.write_text(
        "[query]\ncase_insensitive_pn = false\nmax_results = 500\n"
        '[commitment]\nverify = "exists"\nretry_interval = 1\nreport_deadline = 60\n'
        "[database]\npool_size = 4\nmax_overflow = 0\npool_timeout = 2.5\nconnect_timeout = 3\n"
    )

    settings = load_settings(path, environ={"PACS_DATABASE_URL": "postgresql+asyncpg://h/db"})

    assert (settings.query.case_insensitive_pn, settings.query.max_results) == (False, 500)
    assert settings.commitment.verify == "exists"
    assert settings.commitment.retry_interval == 1.0
    assert (settings.database.pool_size, settings.database.max_overflow) == (4, 0)
    assert (settings.database.pool_timeout, settings.database.connect_timeout) == (2.5, 3.0)
    assert settings.database.url == "postgresql+asyncpg://h/db"  # the pool keys survive it


def test_an_unknown_verify_mode_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "pacs.toml"
    path.write_text('[commitment]\nverify = "maybe"\n')

    with pytest.raises(ConfigError, match=r"\[commitment\] verify"):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+asyncpg://pacs:s3:c/r@db:5432/pacs",
            "postgresql+asyncpg://pacs:***@db:5432/pacs",
        ),
        (
            "postgresql+asyncpg://u@h/d?password=s3cret&ssl=true",
            "postgresql+asyncpg://u@h/d?password=***&ssl=true",
        ),
        ("postgresql+asyncpg://pacs@db:5432/pacs", "postgresql+asyncpg://pacs@db:5432/pacs"),
        ("postgresql+asyncpg://db:5432/pacs", "postgresql+asyncpg://db:5432/pacs"),
        (
            "sqlite+aiosqlite:////srv/pacs/index.sqlite",
            "sqlite+aiosqlite:////srv/pacs/index.sqlite",
        ),
    ],
)
def test_the_database_password_is_masked_wherever_it_is_written(url: str, shown: str) -> None:
    assert mask_password(url) == shown


def test_settings_repr_never_shows_the_database_password() -> None:
    settings = load_settings(None, environ={"PACS_DATABASE_URL": "postgresql+asyncpg://u:pw1@h/d"})

    assert "pw1" not in repr(settings)
    assert "postgresql+asyncpg://u:***@h/d" in repr(settings)
    assert settings.database.url == "postgresql+asyncpg://u:pw1@h/d"
    assert settings.database.url_source == "PACS_DATABASE_URL"


def test_peers_keep_every_permission_and_unknown_aes_may_echo_and_store_by_default(
    load: Load,
) -> None:
    settings = load(PEER)

    assert settings.peers[0].allow == ALL_OPERATIONS
    assert (settings.peers[0].hosts, settings.peers[0].move_destinations) == ((), None)
    assert settings.access == AccessSettings(frozenset({Operation.ECHO, Operation.STORE}), False)


def test_an_empty_allow_list_allows_nothing(load: Load) -> None:
    assert load(PEER + "allow = []").peers[0].allow == frozenset()


def test_check_called_ae_title_in_server_is_a_deprecated_alias(load: Load) -> None:
    settings = load("[server]\ncheck_called_ae_title = true")

    assert settings.access.check_called_ae_title is True
    assert settings.warnings == (
        "[server] check_called_ae_title is deprecated: "
        "set check_called_ae_title in [access] instead",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[server]\ncheck_called_ae_title = true\n[access]\ncheck_called_ae_title = false",
            "[server] check_called_ae_title: moved to [access] check_called_ae_title, "
            "which is also set; remove the one in [server]",
        ),
        (
            '[access]\nunknown_peers = ["echo", "read"]',
            "[access] unknown_peers: must be one of echo, store, find, get, move, commit, "
            "got 'read'",
        ),
        ('[access]\nunknown_peers = "echo"', "[access] unknown_peers: must be a list, got 'echo'"),
        ("[access]\nunknown = []", "unknown key [access] unknown (did you mean unknown_peers?)"),
        (PEER + 'alow = ["find"]', "unknown key [[peers]][1] alow (did you mean allow?)"),
        (
            PEER + 'hosts = ["10.0.0.5/24"]',
            "[[peers]][1] hosts: '10.0.0.5/24' has host bits set (did you mean 10.0.0.0/24?)",
        ),
        (
            PEER + 'hosts = ["ws.example"]',
            "[[peers]][1] hosts: must be an IP address or CIDR range, got 'ws.example'",
        ),
        (
            PEER + 'move_destinations = ["NOWHERE"]',
            "[[peers]][1] move_destinations: 'NOWHERE' is not a configured peer",
        ),
    ],
)
def test_bad_permission_names_the_key_and_the_reason(
    config_error: Refuse, text: str, expected: str
) -> None:
    assert config_error(text) == f"pacs.toml: {expected}"


def test_metrics_are_off_by_default_and_served_where_the_table_says(load: Load) -> None:
    assert load("").metrics == MetricsSettings(host="127.0.0.1", port=None)
    assert not load("").metrics.enabled

    metrics = load('[metrics]\nhost = "0.0.0.0"\nport = 9112').metrics

    assert metrics == MetricsSettings(host="0.0.0.0", port=9112)
    assert metrics.enabled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[metrics]\nport = "9112"', "[metrics] port: must be an integer from 0 to 65535"),
        ("[metrics]\nport = 70000", "[metrics] port: must be an integer from 0 to 65535"),
        ("[metrics]\nprot = 9112", "unknown key [metrics] prot (did you mean port?)"),
        ('[metrics]\nhost = "0.0.0.0"', "[metrics] host: set port as well to serve metrics"),
        ("[server]\nport = 104\n[metrics]\nport = 104", "[metrics] port: 104 is already the"),
        ('[logging]\nformat = "xml"', "[logging] format: must be one of text, json, got 'xml'"),
    ],
)
def test_bad_metrics_or_log_format_names_the_key(
    config_error: Refuse, text: str, expected: str
) -> None:
    assert config_error(text).startswith(f"pacs.toml: {expected}")


def test_log_format_is_read_case_insensitively(load: Load) -> None:
    assert load("").logging.format == "text"
    assert load('[logging]\nformat = "JSON"').logging.format == "json"
