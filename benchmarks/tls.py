"""DICOM TLS benchmark: CT ingest over TLS against plain, associations per second, bad input.

One pacs process listens on a plain and a TLS port (client certificates required;
throwaway CA). In the same run, DCMTK storescu sends 512x512 16-bit CT instances
to each port in turn (fresh instances every time, the order alternating between
runs); the figure is TLS ingest as a ratio of plain ingest. Associations per second
(open, C-ECHO, release) use pacs's own requestor, as benchmarks.echo_rate does, over
TLS and plain. Last, each bad-input case is tried and pacs's WARNING line for it shown.
Usage: python -m benchmarks.tls [--instances 64] [--associations 2] [--runs 3]
                                [--echo-associations 200] [--no-fsync]
"""

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import dcmtk
from benchmarks.certificates import Credential, Pki, make_pki
from benchmarks.dataset import Kind, generate
from benchmarks.echo_rate import free_port, wait_for_port
from pacs.config_tls import TlsSettings
from pacs.net.contexts import VERIFICATION, proposal
from pacs.net.echo import echo
from pacs.net.handshake import request_association
from pacs.net.timeouts import Timeouts
from pacs.net.tls import client_context

HANDSHAKE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Server:
    plain: int
    tls: int
    log: Path


def start_pacs(workdir: Path, pki: Pki, fsync: bool) -> tuple[subprocess.Popen[bytes], Server]:
    server = Server(free_port(), free_port(), workdir / "pacs.log")
    config = workdir / "pacs.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {server.plain}\n[logging]\nlevel = "WARNING"\n'
        f'[storage]\nroot = "{workdir / "store"}"\nfsync = {str(fsync).lower()}\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{workdir / "index.sqlite"}"\n'
        f'[tls]\nport = {server.tls}\ncertificate = "{pki.server.certificate}"\n'
        f'private_key = "{pki.server.private_key}"\nca_certificates = "{pki.ca}"\n'
        f"handshake_timeout = {HANDSHAKE_TIMEOUT}\n"
    )
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pacs", "serve", "--config", str(config)], stderr=log
        )
    wait_for_port(server.plain)
    wait_for_port(server.tls)
    return process, server


def tls_options(pki: Pki, credential: Credential) -> list[str]:
    """DCMTK's options for TLS with a client certificate, trusting the test CA."""
    return ["+tls", str(credential.private_key), str(credential.certificate), "+cf", str(pki.ca)]


def ingest(port: int, files: Sequence[Path], associations: int, options: Sequence[str]) -> float:
    """Send `files` over `associations` parallel storescu processes; return instances/s."""
    chunks = [list(files[n::associations]) for n in range(associations)]
    command = [dcmtk.tool("storescu"), "-aet", "BENCH", "-aec", "PACS", *options]
    started = time.perf_counter()
    processes = [
        subprocess.Popen([*command, "127.0.0.1", str(port), *map(str, chunk)])
        for chunk in chunks
        if chunk
    ]
    codes = [process.wait() for process in processes]
    elapsed = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"storescu failed on port {port}: exit statuses {codes}")
    return len(files) / elapsed


async def associations_per_second(port: int, count: int, context: ssl.SSLContext | None) -> float:
    started = time.perf_counter()
    for _ in range(count):
        assoc = await request_association(
            "127.0.0.1",
            port,
            calling_ae_title="BENCH",
            called_ae_title="PACS",
            contexts=[proposal(VERIFICATION)],
            timeouts=Timeouts(acse=10, dimse=10, network=10),
            max_pdu_length=0,
            tls=context,
        )
        await echo(assoc)
        await assoc.release()
    return count / (time.perf_counter() - started)


def bad_input_cases(pki: Pki, server: Server) -> dict[str, list[str]]:
    """Each case: the command that tries it (a DCMTK echoscu, OpenSSL, or a silent socket)."""
    echoscu = [dcmtk.tool("echoscu"), "-aet", "BENCH", "-aec", "PACS"]
    tls, plain = ["127.0.0.1", str(server.tls)], ["127.0.0.1", str(server.plain)]
    silent = "import socket,sys; s=socket.create_connection(('127.0.0.1',int(sys.argv[1])));"
    silent += "sys.exit(0 if s.recv(1) == b'' else 1)"
    anonymous = ["openssl", "s_client", "-connect", f"127.0.0.1:{server.tls}", "-tls1_2"]
    return {
        "plaintext DICOM on the TLS port": [*echoscu, *tls],
        "TLS ClientHello on the plain port": [*echoscu, *tls_options(pki, pki.client), *plain],
        "untrusted client certificate": [*echoscu, *tls_options(pki, pki.untrusted), *tls],
        "expired client certificate": [*echoscu, *tls_options(pki, pki.expired), *tls],
        "no client certificate (DCMTK +tla)": [*echoscu, "+tla", "-ic", *tls],
        "anonymous suites only (openssl -cipher aNULL)": [
            *anonymous,
            "-cipher",
            "aNULL:@SECLEVEL=0",
        ],
        "TLS 1.1 only (openssl -tls1_1)": [
            *anonymous[:-1],
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ],
        "stalled handshake (connects, sends nothing)": [sys.executable, "-c", silent, tls[1]],
    }


def _refusal_line(log: Path, seen: int) -> str:
    """pacs's first WARNING after line `seen` of its log (waiting a little for it)."""
    deadline = time.monotonic() + 5
    while True:
        lines = log.read_text().splitlines()[seen:]
        warning = next((line for line in lines if " WARNING " in line), None)
        if warning is not None or time.monotonic() > deadline:
            return warning.split(" ", 4)[-1] if warning else "(nothing logged)"
        time.sleep(0.05)


def try_bad_input(pki: Pki, server: Server) -> list[tuple[str, str, float, str]]:
    """(case, client outcome, seconds until the client gave up, pacs's log line) per case."""
    outcomes = []
    for case, command in bad_input_cases(pki, server).items():
        seen = len(server.log.read_text().splitlines())
        started = time.perf_counter()
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False
        )
        elapsed = time.perf_counter() - started
        if case.startswith("stalled"):
            outcome = "closed by pacs" if result.returncode == 0 else "NOT closed"
        else:
            outcome = f"refused (exit {result.returncode})" if result.returncode else "ACCEPTED"
        outcomes.append((case, outcome, elapsed, _refusal_line(server.log, seen)))
    return outcomes


def _median_rates(
    files: dict[str, list[list[Path]]], server: Server, options: dict[str, list[str]], n: int
) -> dict[str, float]:
    rates: dict[str, list[float]] = {"plain": [], "tls": []}
    ports = {"plain": server.plain, "tls": server.tls}
    for run in range(len(files["plain"])):
        order = ("plain", "tls") if run % 2 == 0 else ("tls", "plain")
        for mode in order:
            rates[mode].append(ingest(ports[mode], files[mode][run], n, options[mode]))
    return {mode: statistics.median(values) for mode, values in rates.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=64, help="CT instances per run")
    parser.add_argument("--associations", type=int, default=2, help="parallel storescu")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (median reported)")
    parser.add_argument("--echo-associations", type=int, default=200, help="for associations/s")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="store without fsync: the disk no longer hides the cost of TLS",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = make_pki(work / "pki")
        files = {
            mode: [
                generate(work / f"{mode}{run}", Kind.CT, args.instances, studies=1, patients=1,
                         seed=100 + 2 * run + (mode == "tls"))
                for run in range(args.runs)
            ]
            for mode in ("plain", "tls")
        }  # fmt: skip
        megabytes = sum(p.stat().st_size for p in files["plain"][0]) / args.instances / 1e6
        process, server = start_pacs(work, pki, fsync=not args.no_fsync)
        try:
            options = {"plain": [], "tls": tls_options(pki, pki.client)}
            ingest_rates = _median_rates(files, server, options, args.associations)
            settings = TlsSettings(0, pki.client.certificate, pki.client.private_key, pki.ca)
            context = client_context(settings)
            count = args.echo_associations
            assoc_rates = {
                "plain": asyncio.run(associations_per_second(server.plain, count, None)),
                "tls": asyncio.run(associations_per_second(server.tls, count, context)),
            }
            outcomes = try_bad_input(pki, server)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"cores: {os.cpu_count()}; {args.instances} CT 512x512 16-bit ({megabytes:.2f} MB each)")
    print(f"per run, {args.associations} storescu associations; median of {args.runs} runs")
    print(f"[storage] fsync = {str(not args.no_fsync).lower()}")
    print("\n| | plain | TLS | TLS/plain |\n|---|---|---|---|")
    plain, tls = ingest_rates["plain"], ingest_rates["tls"]
    print(f"| CT ingest, inst/s | {plain:,.1f} | {tls:,.1f} | {tls / plain:.2f} |")
    print(f"| CT ingest, MB/s | {plain * megabytes:,.1f} | {tls * megabytes:,.1f} | |")
    plain, tls = assoc_rates["plain"], assoc_rates["tls"]
    print(
        f"| associations/s (open, echo, release) | {plain:,.0f} | {tls:,.0f} | {tls / plain:.2f} |"
    )
    print("\n| bad input | outcome | seconds | pacs logged |\n|---|---|---|---|")
    for case, outcome, seconds, line in outcomes:
        print(f"| {case} | {outcome} | {seconds:.2f} | {line} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
