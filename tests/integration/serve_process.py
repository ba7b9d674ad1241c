"""`pacs serve` as a child process, for tests that signal or kill the server."""

import asyncio
import os
import re
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LISTENING = re.compile(r"pacs listening on ([\d.]+):(\d+) as (\S+)")


@dataclass
class ServeProcess:
    process: asyncio.subprocess.Process
    host: str = ""
    port: int = 0
    log: list[str] = field(default_factory=list)
    _pump: asyncio.Task[None] | None = None

    async def _read_log(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    async def wait_listening(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.log:
                    if match := LISTENING.search(line):
                        self.host, self.port = match[1], int(match[2])
                        return
                if self.process.returncode is not None:
                    raise RuntimeError("pacs serve exited:\n" + "\n".join(self.log))
                await asyncio.sleep(0.05)

    async def wait_for_line(self, text: str, start: int = 0, timeout: float = 30.0) -> str:
        """The first log line from index `start` on that contains `text`, waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                for line in self.log[start:]:
                    if text in line:
                        return line
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"pacs serve exited before {text!r}:\n" + "\n".join(self.log)
                    )
                await asyncio.sleep(0.05)

    async def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server (None: just wait for it) and return its exit code."""
        if sig is not None and self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
        if self._pump is not None:
            await self._pump
        return code


async def start_serve(config: Path, *extra: str) -> ServeProcess:
    """Start `python -m pacs serve --config CONFIG`; its log is collected as it runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pacs",
        "serve",
        "--config",
        str(config),
        *extra,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = ServeProcess(process)
    served._pump = asyncio.create_task(served._read_log())
    return served


async def run_pacs(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run a short `pacs` command; return its exit code and everything it printed.

    `env` adds to (or, with an empty value, removes from) this process's environment.
    """
    environ = dict(os.environ)
    for name, value in (env or {}).items():
        if value:
            environ[name] = value
        else:
            environ.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pacs",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=environ,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def run_pacs_apart(*args: str) -> tuple[int, str, str]:
    """Run a short `pacs` command; return its exit code, stdout and stderr apart."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pacs",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()
