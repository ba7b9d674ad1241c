"""A real S3 server on loopback for tests and benchmarks: moto's server mode, one bucket.

`moto_server` (from `moto[server]`) is started as a subprocess on a free port of
127.0.0.1 and stopped by its process id; `stop()` and `restart()` let a test take the
object store away and bring it back on the same port, with its objects gone.
"""

import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmarks.processes import free_port

START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0


def _moto_command() -> list[str]:
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise RuntimeError('moto_server not found: pip install "moto[server]"')
    return [found]


class MotoServer:
    """moto_server on 127.0.0.1:port holding bucket BUCKET."""

    BUCKET = "pacs-blobs"

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator["MotoServer"]:
        """A running server with an empty bucket; stopped on leaving."""
        server = cls(free_port())
        server.run()
        try:
            yield server
        finally:
            server.stop()

    @classmethod
    def existing(cls, endpoint: str) -> "MotoServer":
        """A server someone else runs (CI's, PACS_TEST_S3_ENDPOINT), with the bucket made."""
        server = cls(int(endpoint.rstrip("/").rsplit(":", 1)[1]))
        if not server._create_bucket():
            raise RuntimeError(f"no S3 server answers at {endpoint}")
        return server

    def run(self) -> None:
        """Start the server (again) on its port and create the bucket."""
        command = [*_moto_command(), "-H", "127.0.0.1", "-p", str(self.port)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._create_bucket():
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not answer on port {self.port}")
            time.sleep(0.1)

    def _create_bucket(self) -> bool:
        request = urllib.request.Request(f"{self.endpoint}/{self.BUCKET}", method="PUT")
        try:
            # moto answers its first request only once it has loaded its backends, which
            # takes seconds on a busy machine: a read timed out is "not yet", as is a refusal.
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT):
                return True
        except OSError:  # URLError, ConnectionError, TimeoutError
            return False

    def stop(self) -> None:
        """Stop the server; its objects are lost (moto keeps them in memory)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
