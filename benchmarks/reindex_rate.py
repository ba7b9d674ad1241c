"""`pacs reindex`'s rate: instances a second rebuilt from the store into an empty database.

Generates small instances (64x64 Secondary Capture), stores them with `pacs import`, then
rebuilds the index with `pacs reindex --into` a new database: headers parsed in the
command's own thread (--workers 0), in one worker process, and in one per core. Prints
wall-clock and CPU figures (the machine may be shared: instances per CPU-second is the
steadier one) and peak RSS.
Usage: python -m benchmarks.reindex_rate [--count 10000] [--engine sqlite|postgresql]
"""

import argparse
import os
import re
import tempfile
from pathlib import Path

from benchmarks import postgres
from benchmarks.admin_runs import new_database, run_pacs, write_config
from benchmarks.dataset import Kind, generate
from benchmarks.echo_rate import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="small instances to store")
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    dropped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            files = generate(work / "in", Kind.SMALL, args.count, studies=args.count // 50)
            url, name = new_database(args.engine, work, "index")
            dropped += [name] if name else []
            config = write_config(work, free_port(), url)
            run_pacs("import", "--config", str(config), str(work / "in"))
            print(f"archive: {len(files)} small instances, {args.engine}, {os.cpu_count()} cores")
            for workers in (0, 1, os.cpu_count() or 1):
                into, name = new_database(args.engine, work, f"rebuilt{workers}")
                dropped += [name] if name else []
                run = run_pacs(
                    "reindex", "--config", str(config), "--into", into, "--workers", str(workers)
                )
                found = re.search(r"(\d+) instances indexed in ([\d.]+) s", run.output)
                assert found, run.output
                indexed, seconds = int(found[1]), float(found[2])
                print(
                    f"reindex --workers {workers}: {indexed} instances in "
                    f"{seconds:.2f} s of rebuild = {indexed / seconds:,.0f}/s; whole command "
                    f"{run.per_second(indexed)}; peak RSS {run.peak_mib:,.0f} MiB"
                )
        finally:
            for name in dropped:
                postgres.drop_database(name)


if __name__ == "__main__":
    main()
