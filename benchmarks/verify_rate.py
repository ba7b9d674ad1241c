"""`pacs verify`'s rate: MB/s re-hashed from a cold and from a warm page cache, and its peak RSS.

Fills an archive through a real server (DCMTK's storescu sends CT instances of 512 KiB
each), stops it, then runs `pacs verify --json` as an admin would. Before the cold run
the page cache is dropped, which needs root; without it both runs are warm and the cold
one says so. Run it at two sizes to see that memory does not grow with the archive.
Usage: python -m benchmarks.verify_rate [--count 256] [--database-url URL]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.echo_rate import free_port, wait_for_port
from benchmarks.processes import DCMTK_ENV

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def write_config(work: Path, port: int, database_url: str | None) -> Path:
    url = database_url or f"sqlite+aiosqlite:///{work / 'index.sqlite'}"
    config = work / "pacs.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n[logging]\nlevel = "WARNING"\n'
        f'[storage]\nroot = "{work / "store"}"\nmin_free_bytes = 0\n'
        f'[database]\nurl = "{url}"\n'
    )
    return config


def fill(config: Path, port: int, files: list[Path]) -> None:
    """Store `files` through `pacs serve`, then stop it."""
    server = subprocess.Popen([sys.executable, "-m", "pacs", "serve", "--config", str(config)])
    try:
        wait_for_port(port)
        subprocess.run(
            [dcmtk.tool("storescu"), "127.0.0.1", str(port), *map(str, files)],
            check=True,
            env=DCMTK_ENV,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)


def drop_page_cache() -> bool:
    """Write dirty pages out and drop the page cache; False when not permitted."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def run_verify(config: Path) -> tuple[dict[str, Any], float]:
    """Run `pacs verify --json`; return its report and its peak RSS in MiB."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pacs", "verify", "--json", "--config", str(config)],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    out = process.stdout.read()
    # wait4, not wait(): the child's own resource usage, whatever else this process ran.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"pacs verify exited with {process.returncode}: {out.decode()}")
    return json.loads(out), usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=256, help="CT instances to store")
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database for the index (default: SQLite)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = generate(work / "in", Kind.CT, args.count)
        port = free_port()
        config = write_config(work, port, args.database_url)
        fill(config, port, files)
        print(f"archive: {args.count} CT instances, {os.cpu_count()} cores")
        for run in ("cold", "warm"):
            label = run
            if run == "cold" and not drop_page_cache():
                label = "cold (page cache not dropped: not permitted)"
            report, peak = run_verify(config)
            counts = report["counts"]
            print(
                f"{label}: {counts['blobs_rehashed']} blobs, {counts['bytes_rehashed'] / 1e6:,.1f}"
                f" MB in {counts['seconds']:.2f} s = {counts['mb_per_s']:,.0f} MB/s;"
                f" peak RSS {peak:,.0f} MiB"
            )


if __name__ == "__main__":
    main()
