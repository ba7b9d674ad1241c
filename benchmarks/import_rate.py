"""`pacs import`'s rate beside the DIMSE ingest rate, on the same files.

Generates small instances (64x64 Secondary Capture); sends them with DCMTK's storescu
(one association) to `pacs serve`; then imports the same folder with `pacs import` into
a fresh archive, and once more (everything is skipped as already stored). Prints
instances per second, wall-clock and per CPU-second of the pacs process (the machine
may be shared), and peak RSS.
Usage: python -m benchmarks.import_rate [--count 10000] [--engine sqlite|postgresql]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import dcmtk, postgres
from benchmarks.admin_runs import new_database, run_pacs, write_config
from benchmarks.dataset import Kind, generate
from benchmarks.echo_rate import free_port, wait_for_port
from benchmarks.processes import DCMTK_ENV
from benchmarks.server_cpu import cpu_seconds


def dimse_rate(work: Path, engine: str, folder: Path, count: int) -> tuple[float, float, str]:
    """storescu into `pacs serve`: instances a second wall-clock and per CPU-second of serve."""
    url, name = new_database(engine, work, "served")
    port = free_port()
    config = write_config(work / "served", port, url)
    server = subprocess.Popen([sys.executable, "-m", "pacs", "serve", "--config", str(config)])
    try:
        wait_for_port(port)
        before = cpu_seconds(server.pid)[0]
        started = time.perf_counter()
        subprocess.run(
            [dcmtk.tool("storescu"), "+sd", "+r", "127.0.0.1", str(port), str(folder)],
            check=True,
            env=DCMTK_ENV,
        )
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.pid)[0] - before
    finally:
        server.terminate()
        server.wait(timeout=60)
    return count / wall, count / cpu, name or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="small instances")
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    dropped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            folder = work / "in"
            generate(folder, Kind.SMALL, args.count, studies=args.count // 50)
            print(f"{args.count} small instances, {args.engine}, {os.cpu_count()} cores")
            wall_rate, cpu_rate, served = dimse_rate(work, args.engine, folder, args.count)
            dropped += [served] if served else []
            print(f"storescu -> serve: {wall_rate:,.0f}/s wall, {cpu_rate:,.0f} per CPU-second")
            url, imported = new_database(args.engine, work, "imported")
            dropped += [imported] if imported else []
            config = write_config(work / "imported", free_port(), url)
            for label in ("import", "import again (all skipped)"):
                run = run_pacs("import", "--config", str(config), str(folder))
                print(
                    f"{label}: {run.per_second(args.count)}; peak RSS {run.peak_mib:,.0f} MiB"
                    f"\n  {run.output.strip().splitlines()[-1]}"
                )
        finally:
            for name in dropped:
                postgres.drop_database(name)


if __name__ == "__main__":
    main()
