"""De-identification on the way out: instances/s of C-MOVE to a plain peer and to a peer with
the "basic" profile, and of `pacs export --deidentify`, for small and CT instances.

pacs runs in this process (SQLite index under a temporary directory) so that its CPU
time (time.process_time) is measured apart from DCMTK's movescu and storescp, which run
as child processes: the receiver writes plain files. Each figure is the best of
--repeat runs; CPU ms per instance is the machine-independent one (the machine is shared).
Usage: python -m benchmarks.deidentify_transfer [--small 400] [--ct 100] [--repeat 3]
"""

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydicom import dcmread

from benchmarks import dcmtk
from benchmarks.dataset import Kind, generate
from benchmarks.processes import DCMTK_ENV
from benchmarks.servers import shutdown
from benchmarks.targets import start_storescp
from pacs.admin import ExportRequest, export_deidentified
from pacs.app import PacsApp
from pacs.config import Settings, load_settings

Timed = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def _write_config(work: Path, receiver_port: int) -> Path:
    peers = "".join(
        f'[[peers]]\nae_title = "{title}"\nhost = "127.0.0.1"\nport = {receiver_port}\n{extra}'
        for title, extra in (("PLAIN", ""), ("RESEARCH", 'deidentify = "basic"\n'))
    )
    config = work / "pacs.toml"
    config.write_text(
        '[server]\nhost = "127.0.0.1"\nport = 0\n'
        f'[storage]\nroot = "{work / "store"}"\nmin_free_bytes = 0\nfsync = false\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{work / "index.sqlite"}"\n'
        '[access]\nunknown_peers = ["echo", "store", "find", "move", "get"]\n'
        '[logging]\nlevel = "WARNING"\n' + peers
    )
    return config


async def _dcmtk(name: str, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        dcmtk.tool(name),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=DCMTK_ENV,
    )
    _, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"{name} failed: {err.decode(errors='replace')[-500:]}")


async def _timed(step: Callable[[], Awaitable[object]]) -> Timed:
    wall, cpu = time.perf_counter(), time.process_time()
    await step()
    return time.perf_counter() - wall, time.process_time() - cpu


async def _best(step: Callable[[], Awaitable[object]], repeat: int) -> Timed:
    runs = [await _timed(step) for _ in range(repeat)]
    return min(runs, key=lambda run: run[1])


def _instances(work: Path, kind: Kind, count: int) -> tuple[list[Path], str]:
    files = generate(work / "data", kind, count, studies=1, patients=1)
    for path in files:  # generated images have no text in their pixels: say so
        ds = dcmread(path)
        ds.BurnedInAnnotation = "NO"
        ds.save_as(path)
    return files, str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


async def _export(settings: Settings, request: ExportRequest, count: int) -> None:
    report = await export_deidentified(settings, request, lambda _total, _done: None)
    if report.written != count:
        raise RuntimeError(f"exported {report.written} of {count}: {report.refused[:1]}")


async def measure(kind: Kind, count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        files, study = _instances(work, kind, count)
        size = sum(path.stat().st_size for path in files) / len(files) / 1024
        receiver = start_storescp(work)
        try:
            config = _write_config(work, receiver.port)
            settings = load_settings(config, environ={})
            app = PacsApp(settings)
            await app.start()
            try:
                host, port = app.address
                await _dcmtk("storescu", "-aec", "PACS", host, str(port), *map(str, files))

                def move(destination: str) -> Callable[[], Awaitable[None]]:
                    return lambda: _dcmtk(
                        "movescu", "-S", "-aec", "PACS", "-aem", destination,
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                        host, str(port),
                    )  # fmt: skip

                plain = await _best(move("PLAIN"), repeat)
                deidentified = await _best(move("RESEARCH"), repeat)
                # Files are named by SOP Instance UID: the originals once, the new ones once.
                if (received := receiver.stored()) != 2 * count:
                    raise RuntimeError(f"the receiver holds {received}, not {2 * count}")
                request = ExportRequest("basic", work / "export", study_uid=study)
                exported = await _best(lambda: _export(settings, request, count), repeat)
            finally:
                await app.stop()
        finally:
            shutdown(receiver)
    print(f"{kind.value} x{count} ({size:.0f} KiB each), best of {repeat}:")
    for label, (wall, cpu) in (
        ("C-MOVE as stored", plain),
        ("C-MOVE de-identified", deidentified),
        ("export de-identified", exported),
    ):
        print(
            f"  {label:22} {count / wall:7.0f} inst/s wall   "
            f"{cpu * 1000 / count:6.2f} ms CPU/inst (pacs process)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=400, help="small instances in the study")
    parser.add_argument("--ct", type=int, default=100, help="CT instances in the study")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the least CPU counts")
    args = parser.parse_args()
    asyncio.run(measure(Kind.SMALL, args.small, args.repeat))
    asyncio.run(measure(Kind.CT, args.ct, args.repeat))


if __name__ == "__main__":
    main()
