"""C-ECHO round trips per second and associations per second: pacs next to a pynetdicom AE.

Both servers run in their own process on this machine; the same client (our
asyncio requestor, in this process) drives each in turn, so the figures compare
the servers, not the clients. Usage: python -m benchmarks.echo_rate [--echoes N]
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pacs.net.contexts import VERIFICATION, proposal
from pacs.net.echo import echo
from pacs.net.handshake import request_association
from pacs.net.timeouts import Timeouts

PYNETDICOM_SERVER = """
import logging, sys
from pynetdicom import AE
from pynetdicom.sop_class import Verification
logging.disable(logging.CRITICAL)
ae = AE(ae_title="PACS")
ae.add_supported_context(Verification)
ae.maximum_associations = 64
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start_pacs(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    config = workdir / "pacs.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n[logging]\nlevel = "WARNING"\n'
        f'[storage]\nroot = "{workdir / "store"}"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{workdir / "index.sqlite"}"\n'
    )
    return subprocess.Popen([sys.executable, "-m", "pacs", "serve", "--config", str(config)])


def start_pynetdicom(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PYNETDICOM_SERVER, str(port)])


async def _connect(port: int):  # type: ignore[no-untyped-def]
    return await request_association(
        "127.0.0.1",
        port,
        calling_ae_title="BENCH",
        called_ae_title="PACS",
        contexts=[proposal(VERIFICATION)],
        timeouts=Timeouts(acse=10, dimse=10, network=10),
        max_pdu_length=0,
    )


async def echoes_per_second(port: int, count: int) -> float:
    assoc = await _connect(port)
    started = time.perf_counter()
    for _ in range(count):
        await echo(assoc)
    elapsed = time.perf_counter() - started
    await assoc.release()
    return count / elapsed


async def associations_per_second(port: int, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        assoc = await _connect(port)
        await echo(assoc)
        await assoc.release()
    return count / (time.perf_counter() - started)


def measure(port: int, echoes: int, associations: int, runs: int) -> tuple[float, float]:
    echo_rates = [asyncio.run(echoes_per_second(port, echoes)) for _ in range(runs)]
    assoc_rates = [asyncio.run(associations_per_second(port, associations)) for _ in range(runs)]
    return statistics.median(echo_rates), statistics.median(assoc_rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--echoes", type=int, default=2000, help="C-ECHOs on one association")
    parser.add_argument("--associations", type=int, default=200, help="associations opened")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, start in (
            ("pacs", lambda p: start_pacs(p, Path(tmp))),
            ("pynetdicom", start_pynetdicom),
        ):
            port = free_port()
            process = start(port)
            try:
                wait_for_port(port)
                results[name] = measure(port, args.echoes, args.associations, args.runs)
            finally:
                process.terminate()
                process.wait(timeout=20)
    print(f"cores: {os.cpu_count()}; median of {args.runs} runs")
    print("| server | C-ECHO/s (one association) | associations/s (open, echo, release) |")
    print("|---|---|---|")
    for name, (echo_rate, assoc_rate) in results.items():
        print(f"| {name} | {echo_rate:,.0f} | {assoc_rate:,.0f} |")
    pacs, other = results["pacs"], results["pynetdicom"]
    print(f"| ratio pacs/pynetdicom | {pacs[0] / other[0]:.1f}x | {pacs[1] / other[1]:.1f}x |")


if __name__ == "__main__":
    main()
