"""`[server] workers`: checked against the database and ports; each worker's own settings."""

from pathlib import Path

import pytest

from pacs.config import load_settings
from pacs.errors import ConfigError
from pacs.supervisor import WorkerSpec, worker_settings

POSTGRES = 'url = "postgresql+asyncpg://pacs@127.0.0.1/pacs"'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pacs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_several_workers_on_sqlite_are_refused_in_one_line_naming_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "[server]\nworkers = 2\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: [server] workers: 2 processes need PostgreSQL")


def test_several_workers_on_postgresql_from_the_file_or_the_environment_load(
    tmp_path: Path,
) -> None:
    in_file = _write(tmp_path, f"[server]\nworkers = 4\n[database]\n{POSTGRES}\n")
    assert load_settings(in_file, environ={}).server.workers == 4
    only_env = _write(tmp_path, "[server]\nworkers = 2\n")
    environ = {"PACS_DATABASE_URL": "postgresql+asyncpg://pacs@db/pacs"}
    assert load_settings(only_env, environ=environ).server.workers == 2


@pytest.mark.parametrize("value", ["0", "65", "true", "1.5"])
def test_workers_is_an_integer_from_1_to_64(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f"[server]\nworkers = {value}\n[database]\n{POSTGRES}\n")

    with pytest.raises(ConfigError, match=r"\[server\] workers: must be an integer from 1 to 64"):
        load_settings(path, environ={})


def test_the_workers_metrics_ports_may_not_reach_the_dicom_port(tmp_path: Path) -> None:
    text = f"[server]\nport = 9102\nworkers = 3\n[database]\n{POSTGRES}\n[metrics]\nport = 9100\n"

    with pytest.raises(
        ConfigError, match=r"\[metrics\] port: workers serve metrics on 9100 to 9102"
    ):
        load_settings(_write(tmp_path, text), environ={})


def test_each_worker_gets_the_bound_ports_its_metrics_port_and_its_audit_spool(
    tmp_path: Path,
) -> None:
    text = (
        f"[server]\nport = 0\nworkers = 2\n[database]\n{POSTGRES}\n"
        f'[metrics]\nport = 9100\n[audit]\nspool = "{tmp_path / "spool"}"\n'
        "[web]\nport = 0\n"
    )
    settings = load_settings(_write(tmp_path, text), environ={})
    spec = WorkerSpec.parse(WorkerSpec(2, 41000, None, 42000, 5, 6).encode())

    own = worker_settings(settings, spec)

    assert spec == WorkerSpec(2, 41000, None, 42000, 5, 6)
    assert (own.server.port, own.metrics.port, own.web.port) == (41000, 9101, 42000)
    assert own.audit.spool == tmp_path / "spool" / "worker-2"
    assert own.database == settings.database
