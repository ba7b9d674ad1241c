"""Start-up failures as an admin meets them: one line naming the key to fix, a documented
exit status (2: invalid configuration, 3: something it names cannot be used), no traceback."""

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tests.integration.conftest import write_config
from tests.integration.serve_process import run_pacs

EXIT_CONFIG = 2
EXIT_CANNOT_RUN = 3


def only_line(output: str) -> str:
    """The one line a start-up failure prints; fails on a traceback or any other line."""
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens: bound, so no one else can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def unwritable_directory(tmp_path: Path) -> Path:
    """An existing directory this process cannot create files in, even as root."""
    directory = tmp_path / "read-only"
    directory.mkdir(mode=0o555)
    for candidate in (directory, Path("/sys")):
        try:
            (candidate / "probe").touch()
        except OSError:
            return candidate
        (candidate / "probe").unlink()
    pytest.skip("no directory here refuses writes to this user (root, and /sys is writable)")


async def test_a_port_in_use_names_server_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, server={"port": port})
        code, output = await run_pacs("db", "upgrade", "--config", str(config))
        assert code == 0, output

        code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[server] port" in line
    assert f"127.0.0.1:{port} is already in use" in line


async def test_a_metrics_port_in_use_names_metrics_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, metrics={"port": port})
        code, output = await run_pacs("db", "upgrade", "--config", str(config))
        assert code == 0, output

        code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[metrics] port" in line
    assert f"127.0.0.1:{port} is already in use" in line


@pytest.mark.parametrize("command", ["serve", "config check"])
async def test_a_host_that_does_not_resolve_is_a_configuration_error(
    tmp_path: Path, command: str
) -> None:
    # .invalid never resolves (RFC 2606).
    config = write_config(tmp_path, server={"host": "pacs.invalid"})

    code, output = await run_pacs(*command.split(), "--config", str(config))

    assert code == EXIT_CONFIG
    line = only_line(output)
    assert "[server] host" in line
    assert "'pacs.invalid' does not resolve" in line


async def test_a_host_that_is_not_an_address_of_this_machine_names_server_host(
    tmp_path: Path,
) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine has it.
    config = write_config(tmp_path, server={"host": "192.0.2.1"})
    code, output = await run_pacs("db", "upgrade", "--config", str(config))
    assert code == 0, output

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    assert "[server] host: 192.0.2.1 is not an address of this machine" in only_line(output)


@pytest.mark.parametrize("command", ["serve", "db upgrade"])
async def test_an_index_directory_under_a_regular_file_names_database_url(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "afile").write_text("not a directory\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'afile' / 'data' / 'index.sqlite'}"
    config = write_config(tmp_path, database={"url": url})

    code, output = await run_pacs(*command.split(), "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[database] url" in line
    assert f"{tmp_path / 'afile'} is not a directory" in line


async def test_an_index_directory_that_refuses_writes_names_database_url(
    tmp_path: Path, unwritable_directory: Path
) -> None:
    url = f"sqlite+aiosqlite:///{unwritable_directory / 'index.sqlite'}"
    config = write_config(tmp_path, database={"url": url})

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[database] url" in line
    assert f"cannot open the SQLite database {unwritable_directory / 'index.sqlite'}" in line


@pytest.mark.parametrize("command", ["serve", "db upgrade"])
async def test_postgresql_down_names_database_url(
    tmp_path: Path, closed_port: int, command: str
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/pacs"
    config = write_config(tmp_path, database={"url": url})

    code, output = await run_pacs(*command.split(), "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[database] url" in line
    assert f"127.0.0.1:{closed_port}: connection refused" in line


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["serve", "db upgrade"])
async def test_a_postgresql_database_that_does_not_exist_names_database_url(
    tmp_path: Path, command: str
) -> None:
    name = f"pacs_missing_{uuid.uuid4().hex[:12]}"
    config = write_config(tmp_path, database={"url": with_database(POSTGRES_URL, name)})

    code, output = await run_pacs(*command.split(), "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[database] url" in line
    assert f'database "{name}" does not exist' in line


async def test_a_url_from_the_environment_is_named_as_the_variable(
    tmp_path: Path, closed_port: int
) -> None:
    url = f"postgresql+asyncpg://pacs:s3cret@127.0.0.1:{closed_port}/pacs"

    code, output = await run_pacs(
        "serve", "--config", str(write_config(tmp_path)), env={"PACS_DATABASE_URL": url}
    )

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert line.startswith("pacs: PACS_DATABASE_URL: cannot open PostgreSQL database 'pacs'")
    assert "s3cret" not in line


async def test_a_store_root_under_a_regular_file_names_storage_root(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory\n")
    config = write_config(tmp_path, storage={"root": tmp_path / "afile" / "store"})

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[storage] root" in line
    assert f"{tmp_path / 'afile'} is not a directory" in line


async def test_a_store_root_that_refuses_writes_names_storage_root(
    tmp_path: Path, unwritable_directory: Path
) -> None:
    config = write_config(tmp_path, storage={"root": unwritable_directory})

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert "[storage] root" in line
    assert str(unwritable_directory) in line


async def test_the_traceback_of_a_start_up_failure_is_logged_at_debug(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory\n")
    config = write_config(
        tmp_path, storage={"root": tmp_path / "afile" / "store"}, logging={"level": "DEBUG"}
    )

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    assert "Traceback" in output
    assert output.strip().splitlines()[-1].startswith("pacs: [storage] root: ")


@pytest.mark.parametrize(
    ("key", "audit"),
    [
        ("file", {"file": "{afile}/audit.jsonl"}),
        ("spool", {"syslog": "tcp://127.0.0.1:6514", "spool": "{afile}/spool"}),
        ("ca_certificates", {"syslog": "tls://127.0.0.1:6514", "ca_certificates": "{afile}/ca"}),
    ],
)
async def test_an_audit_path_that_cannot_be_used_names_its_key(
    tmp_path: Path, key: str, audit: dict[str, str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    values = {name: value.format(afile=afile) for name, value in audit.items()}
    config = write_config(tmp_path, audit=values)

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert f"[audit] {key}: " in line
    assert "not a directory" in line.lower()


async def test_an_unreadable_deidentify_secret_file_names_the_profile_key(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.secret"
    peer = {"ae_title": "RESEARCH", "host": "127.0.0.1", "port": 104, "deidentify": "x"}
    config = write_config(tmp_path, peers=[peer], **{"deidentify.x": {"secret_file": missing}})

    code, output = await run_pacs("serve", "--config", str(config))

    assert code == EXIT_CANNOT_RUN
    line = only_line(output)
    assert line.startswith("pacs: [deidentify.x] secret_file: ")
    assert str(missing) in line
