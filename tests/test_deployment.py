"""Dockerfile and docker-compose.yml, checked by reading them (no Docker engine is needed).

They must agree with each other and with pacs: the ports, the config path, the database
URL (accepted by pacs's own validator), the data volume; and the health check's Python is
run for real against a live `pacs serve`.
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import pacs.index.schema
from pacs.app import SHUTDOWN_GRACE
from pacs.config import load_settings

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
DOCKERIGNORE = REPO / ".dockerignore"
EXAMPLE_CONFIG = REPO / "config" / "pacs.toml"


# --- reading the Dockerfile -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or (not pending and not line.strip()):
            continue  # comments are dropped, even inside a continued instruction
        # Docker removes the backslash and the newline and keeps the next line's indent.
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def instruction(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile_instructions() if name == keyword]


def only(keyword: str) -> str:
    found = instruction(keyword)
    assert len(found) == 1, f"expected one {keyword} in the Dockerfile, found {found}"
    return found[0]


def words(arguments: str) -> list[str]:
    """The command of an exec-form (JSON) or shell-form instruction, as words."""
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert isinstance(parsed, list)
        return [str(word) for word in parsed]
    return shlex.split(arguments)


def config_paths(command: list[str]) -> list[str]:
    """Every `--config PATH` in a command, including inside `sh -c` scripts."""
    tokens = [token for word in command for token in shlex.split(word)]
    return [tokens[n + 1] for n, token in enumerate(tokens[:-1]) if token == "--config"]


def healthcheck() -> list[str]:
    """The HEALTHCHECK's command, as words (its --interval=30s... options skipped)."""
    rest = re.sub(r"^(--[a-z-]+=\S+\s+)*", "", only("HEALTHCHECK"))
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK must run a command, got {rest!r}"
    return words(command.strip())


def healthcheck_code() -> str:
    command = healthcheck()
    assert command[:2] == ["python", "-c"] and len(command) == 3, command
    return command[2]


def volume() -> str:
    paths = words(only("VOLUME"))
    assert len(paths) == 1, paths
    return paths[0]


# --- reading docker-compose.yml ---------------------------------------------------------


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    found = services[name]
    assert isinstance(found, dict)
    return found


def environment(name: str) -> dict[str, str]:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    env = service(name).get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def mounts(name: str) -> list[tuple[str, str, str]]:
    """A service's volumes in short syntax, as (source, target, options)."""
    found = []
    for spec in service(name).get("volumes", []):
        assert isinstance(spec, str), f"use the short volume syntax: {spec!r}"
        source, target, options = ([*spec.split(":"), ""])[:3]
        found.append((source, target, options))
    return found


def compose_command() -> list[str]:
    command = service("pacs")["command"]
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def database_url() -> str:
    return environment("pacs")["PACS_DATABASE_URL"]


def config_mount() -> tuple[str, str, str]:
    found = [m for m in mounts("pacs") if m[1].startswith("/etc/pacs/")]
    assert len(found) == 1, f"expected one config mount under /etc/pacs/, found {found}"
    return found[0]


def example_settings(cwd: str | Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """config/pacs.toml loaded as the container loads it: from `cwd`, with the compose URL."""
    monkeypatch.chdir(cwd)
    return load_settings(EXAMPLE_CONFIG, environ={"PACS_DATABASE_URL": database_url()})


# --- the Dockerfile ---------------------------------------------------------------------


def test_base_image_is_a_python_that_pacs_supports() -> None:
    image = only("FROM")
    match = re.match(r"python:(\d+)\.(\d+)\b", image)
    assert match, f"base image should be an official Python image, got {image!r}"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", requires)
    assert minimum, requires
    assert (int(match[1]), int(match[2])) >= (int(minimum[1]), int(minimum[2]))


def test_runs_as_the_created_non_root_user() -> None:
    user = instruction("USER")[-1].split(":")[0]
    assert user not in ("root", "0"), "the server must not run as root"
    created = " ".join(instruction("RUN"))
    uid = re.search(r"useradd\b.*--uid (\d+)", created)
    assert uid, "the Dockerfile should create its user with a fixed uid"
    assert user in (uid[1], "pacs")


def test_pacs_is_installed_from_the_copied_source_tree_as_a_regular_package() -> None:
    # The migrations are package data, so a wheel-style install finds them (the
    # README's editable install finds them in the checkout, where this test runs).
    assert pacs.index.schema.MIGRATIONS_DIR == REPO / "pacs" / "migrations"
    (copied,) = [words(copy)[-1] for copy in instruction("COPY") if words(copy)[0] == "."]
    tree = re.escape(copied)
    installs = [run for run in instruction("RUN") if re.search(rf"pip install\b.* {tree}", run)]
    # --no-deps: the dependency layer before it is the one that installs dependencies.
    assert any(re.search(rf"pip install --no-deps {tree}(\s|$)", run) for run in installs), installs
    assert not [run for run in installs if re.search(r"(-e|--editable)\b", run)], installs


def test_dependency_layer_installs_exactly_the_project_dependencies() -> None:
    (run,) = [run for run in instruction("RUN") if "tomllib" in run]
    command = shlex.split(run)
    assert command[:2] == ["python", "-c"], command
    code = command[2].replace("/app/pyproject.toml", str(REPO / "pyproject.toml"))
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert printed.split("\n")[:-1] == project["dependencies"]
    written = re.search(r"> (\S+)", run)
    assert written, "the dependency list should be written to a file"
    assert f"pip install -r {written[1]}" in run, run


def test_build_context_keeps_what_the_image_needs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "exceptions are not checked here"
    needed = ["pyproject.toml", "README.md", "pacs/__init__.py", "pacs/migrations/env.py"]
    needed += ["alembic.ini", "config/pacs.toml"]
    for path in needed:
        assert (REPO / path).exists(), path
        # A pattern excludes a path when it matches the path or one of its parents.
        candidates = [str(PurePosixPath(path))] + [str(p) for p in PurePosixPath(path).parents]
        excluded = [p for p in patterns for c in candidates if c != "." and fnmatch(c, p)]
        assert not excluded, f"{path} is left out of the build context by {excluded}"


def test_exposes_the_configured_dicom_port() -> None:
    exposed = [int(port.split("/")[0]) for port in words(only("EXPOSE"))]
    config_port = tomllib.loads(EXAMPLE_CONFIG.read_text())["server"]["port"]
    assert exposed == [config_port]


def test_data_volume_holds_the_store_and_the_default_sqlite_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = PurePosixPath(volume())
    monkeypatch.chdir(only("WORKDIR"))
    settings = load_settings(EXAMPLE_CONFIG, environ={})
    assert PurePosixPath(settings.storage.root) == data / "store"
    sqlite_file = settings.database.url.removeprefix("sqlite+aiosqlite:///")
    assert PurePosixPath(sqlite_file) == data / "index.sqlite"


def test_data_volume_belongs_to_the_runtime_user_before_it_is_declared() -> None:
    # Changes to a volume's directory after VOLUME are lost; ownership must come first.
    names = [name for name, _ in dockerfile_instructions()]
    before = [arguments for name, arguments in dockerfile_instructions()[: names.index("VOLUME")]]
    assert any(re.search(rf"chown pacs(:pacs)? {re.escape(volume())}\b", a) for a in before)


def test_serves_with_the_mounted_config_as_pid_1() -> None:
    assert not instruction("ENTRYPOINT"), "an ENTRYPOINT would prefix compose's command"
    cmd = only("CMD")
    assert cmd.startswith("["), "exec form, so pacs itself receives SIGTERM"
    assert words(cmd) == ["pacs", "serve", "--config", config_mount()[1]]


def test_healthcheck_reads_the_config_compose_mounts() -> None:
    # What it sends, and that it fails without a server, is run for real below.
    assert f"Path('{config_mount()[1]}')" in healthcheck_code()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_healthcheck(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_healthcheck_passes_against_a_running_pacs_and_fails_without_one(
    tmp_path: Path,
) -> None:
    config = tmp_path / "pacs.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {_free_port()}\nae_title = "ARCHIVE"\n'
        "check_called_ae_title = true\n"
        f'[storage]\nroot = "{tmp_path / "store"}"\nfsync = false\nmin_free_bytes = 0\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "index.sqlite"}"\n'
    )
    code = healthcheck_code().replace(f"Path('{config_mount()[1]}')", f"Path({str(config)!r})")
    env = {key: value for key, value in os.environ.items() if key != "PACS_DATABASE_URL"}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pacs", "serve", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while (check := _run_healthcheck(code, env)).returncode != 0:
                assert server.poll() is None, f"pacs serve exited:\n{log_path.read_text()}"
                assert time.monotonic() < deadline, f"never healthy:\n{check.stderr}"
                time.sleep(0.2)
            assert "HEALTHCHECK" in log_path.read_text(), "the echo should show in the log"
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert server.returncode == 0, log_path.read_text()
    assert _run_healthcheck(code, env).returncode == 1, "no server must mean unhealthy"


# --- docker-compose.yml -----------------------------------------------------------------


def test_pacs_builds_from_this_dockerfile() -> None:
    build = service("pacs")["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = REPO / build["context"]
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_config_is_mounted_read_only_where_every_command_reads_it() -> None:
    source, target, options = config_mount()
    assert (REPO / source).resolve() == EXAMPLE_CONFIG
    assert "ro" in options.split(",")
    command = compose_command()
    assert command[:2] == ["sh", "-c"], command
    script = command[2]
    assert "pacs db upgrade" in script and "exec pacs serve" in script
    assert config_paths(command) == [target, target]
    assert config_paths(words(only("CMD"))) == [target]


def test_database_url_points_at_the_postgres_service() -> None:
    url = urlsplit(database_url())
    postgres = environment("postgres")
    assert url.hostname == "postgres" and url.port == 5432  # the service, its default port
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path == f"/{postgres['POSTGRES_DB']}"


def test_pacs_accepts_the_compose_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = example_settings(only("WORKDIR"), monkeypatch)
    assert settings.database.url == database_url()
    assert PurePosixPath(settings.storage.root).is_relative_to(volume())


def test_published_port_is_the_exposed_and_configured_one() -> None:
    (mapping,) = service("pacs")["ports"]
    assert isinstance(mapping, str), "quote port mappings: YAML reads some a:b as numbers"
    host_port, container_port = mapping.split("/")[0].split(":")[-2:]
    config_port = tomllib.loads(EXAMPLE_CONFIG.read_text())["server"]["port"]
    assert int(container_port) == config_port == int(only("EXPOSE"))
    assert int(host_port) == config_port


def test_data_lives_in_declared_named_volumes() -> None:
    declared = compose().get("volumes") or {}
    named = {
        (name, source, target)
        for name in ("pacs", "postgres")
        for source, target, _ in mounts(name)
        if not source.startswith((".", "/", "~"))
    }
    assert {source for _, source, _ in named} <= declared.keys()
    targets = {(name, target) for name, _, target in named}
    assert {("pacs", volume()), ("postgres", "/var/lib/postgresql/data")} <= targets


def test_pacs_waits_for_a_healthy_postgres() -> None:
    assert service("pacs")["depends_on"]["postgres"]["condition"] == "service_healthy"
    test = service("postgres")["healthcheck"]["test"]
    command = shlex.split(test) if isinstance(test, str) else test
    assert command[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(command)
    postgres = environment("postgres")
    assert f"--username={postgres['POSTGRES_USER']}" in command
    assert f"--dbname={postgres['POSTGRES_DB']}" in command


def test_stop_grace_period_covers_the_shutdown_grace() -> None:
    period = re.fullmatch(r"(\d+)s", service("pacs")["stop_grace_period"])
    assert period and int(period[1]) > SHUTDOWN_GRACE


# --- docker-compose.yml, profile s3: two replicas, one PostgreSQL, one bucket ------------

S3_REPLICAS = ("pacs-s3-a", "pacs-s3-b")


def s3_settings_of(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The config a replica mounts, loaded as the container loads it, with its environment."""
    [(source, target, options)] = [m for m in mounts(name) if m[1].startswith("/etc/pacs/")]
    assert "ro" in options.split(",") and target == config_mount()[1]
    monkeypatch.chdir(only("WORKDIR"))
    return load_settings(REPO / source, environ=environment(name))


def test_s3_profile_has_an_s3_service_a_bucket_job_and_two_replicas() -> None:
    in_profile = {
        name for name, spec in compose()["services"].items() if "s3" in spec.get("profiles", [])
    }
    assert in_profile == {"s3", "s3-bucket", *S3_REPLICAS}
    assert "profiles" not in service("pacs") and "profiles" not in service("postgres")


def test_replicas_share_the_index_and_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = [s3_settings_of(name, monkeypatch) for name in S3_REPLICAS]
    for name, settings in zip(S3_REPLICAS, loaded, strict=True):
        assert environment(name)["PACS_DATABASE_URL"] == database_url(), name
        assert settings.database.url == database_url()
        assert settings.storage.backend == "s3" and settings.storage.s3 is not None
        assert service(name)["build"] == service("pacs")["build"]
    assert loaded[0].storage.s3 == loaded[1].storage.s3


def test_replicas_reach_the_s3_service_with_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = s3_settings_of(S3_REPLICAS[0], monkeypatch).storage.s3
    endpoint = urlsplit(s3.endpoint)
    assert endpoint.hostname == "s3" and endpoint.port == 9000  # MinIO's API port
    assert service("s3")["command"][:1] == ["server"]
    minio = environment("s3")
    for name in S3_REPLICAS:
        env = environment(name)
        assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    # The job that makes the bucket names the one the replicas use, on the same service.
    script = " ".join(str(word) for word in service("s3-bucket")["entrypoint"])
    assert f"mc mb --ignore-existing s3/{s3.bucket}" in script
    assert "http://s3:9000" in script
    assert environment("s3-bucket") == minio


def test_one_replica_migrates_and_the_other_waits_for_it() -> None:
    first, second = S3_REPLICAS
    first_script = service(first)["command"][2]
    assert "pacs db upgrade" in first_script and "exec pacs serve" in first_script
    assert "pacs db upgrade" not in service(second)["command"][2]
    assert service(second)["depends_on"][first]["condition"] == "service_healthy"
    waits = service(first)["depends_on"]
    assert waits["postgres"]["condition"] == "service_healthy"
    assert waits["s3-bucket"]["condition"] == "service_completed_successfully"
    assert service("s3-bucket")["depends_on"]["s3"]["condition"] == "service_healthy"


def test_replicas_publish_distinct_host_ports_to_the_configured_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host_ports = set()
    for name in S3_REPLICAS:
        (mapping,) = service(name)["ports"]
        host_port, container_port = mapping.split(":")[-2:]
        assert int(container_port) == s3_settings_of(name, monkeypatch).server.port
        host_ports.add(int(host_port))
        period = re.fullmatch(r"(\d+)s", service(name)["stop_grace_period"])
        assert period and int(period[1]) > SHUTDOWN_GRACE
    (pacs_mapping,) = service("pacs")["ports"]
    assert len(host_ports) == 2 and int(pacs_mapping.split(":")[0]) not in host_ports


def test_the_bucket_lives_in_a_declared_named_volume() -> None:
    assert ("pacs-s3", "/data", "") in mounts("s3")
    assert "pacs-s3" in (compose().get("volumes") or {})
