"""S3 client libraries compared: PUT and GET of 512 KiB objects against a moto server.

The candidates for pacs's S3 backend (`pacs.store.s3_store`): obstore's blocking calls
from a pool of threads (how the store would call it: its methods run in worker
threads), obstore's async calls on one loop, and aiobotocore on one loop. Each PUT is
conditional (If-None-Match: *) and carries its SHA-256 checksum, as a blob's upload does;
each GET reads the object whole. Figures are objects per second, with `--concurrency`
requests in flight; the same moto server serves every client in turn, interleaved over
`--runs` rounds. Usage:
python -m benchmarks.s3_clients [--objects 200] [--concurrency 8] [--runs 3]
"""

import argparse
import asyncio
import base64
import hashlib
import importlib.util
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from benchmarks.s3_server import MotoServer

SIZE = 512 * 1024
Measure = Callable[[str, list[bytes], int], Coroutine[Any, Any, tuple[float, float]]]


def _keys(run: str, count: int) -> list[str]:
    return [f"{run}/{n:06d}" for n in range(count)]


async def _put_then_get(
    put: Callable[[str, bytes], Awaitable[None]],
    get: Callable[[str], Awaitable[None]],
    keys: list[str],
    blobs: list[bytes],
) -> tuple[float, float]:
    """Seconds to PUT every blob at once, then to GET every one."""
    started = time.perf_counter()
    await asyncio.gather(*(put(k, b) for k, b in zip(keys, blobs, strict=True)))
    put_seconds = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(get(k) for k in keys))
    return put_seconds, time.perf_counter() - started


async def obstore_threads(
    endpoint: str, blobs: list[bytes], concurrency: int
) -> tuple[float, float]:
    """Seconds to PUT then GET every blob, obstore's blocking API in a thread pool."""
    import obstore  # noqa: PLC0415 - an optional candidate

    store = _obstore(endpoint)
    keys = _keys(secrets.token_hex(4), len(blobs))
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(
            pool.map(
                lambda kb: obstore.put(store, kb[0], kb[1], mode="create"),
                zip(keys, blobs, strict=True),
            )
        )
        put = time.perf_counter() - started
        started = time.perf_counter()
        list(pool.map(lambda key: obstore.get(store, key).bytes(), keys))
        get = time.perf_counter() - started
    return put, get


async def obstore_async(endpoint: str, blobs: list[bytes], concurrency: int) -> tuple[float, float]:
    """Seconds to PUT then GET every blob, obstore's async API on this loop."""
    import obstore  # noqa: PLC0415

    store = _obstore(endpoint)
    keys = _keys(secrets.token_hex(4), len(blobs))
    limit = asyncio.Semaphore(concurrency)

    async def put(key: str, blob: bytes) -> None:
        async with limit:
            await obstore.put_async(store, key, blob, mode="create")

    async def get(key: str) -> None:
        async with limit:
            result = await obstore.get_async(store, key)
            await result.bytes_async()

    return await _put_then_get(put, get, keys, blobs)


async def aiobotocore_loop(
    endpoint: str, blobs: list[bytes], concurrency: int
) -> tuple[float, float]:
    """Seconds to PUT then GET every blob, aiobotocore on this loop."""
    from aiobotocore.config import AioConfig  # noqa: PLC0415
    from aiobotocore.session import get_session  # noqa: PLC0415

    keys = _keys(secrets.token_hex(4), len(blobs))
    limit = asyncio.Semaphore(concurrency)
    config = AioConfig(max_pool_connections=concurrency)
    async with get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=config
    ) as client:

        async def put(key: str, blob: bytes) -> None:
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode()
            async with limit:
                await client.put_object(
                    Bucket=MotoServer.BUCKET,
                    Key=key,
                    Body=blob,
                    ChecksumSHA256=digest,
                    IfNoneMatch="*",
                )

        async def get(key: str) -> None:
            async with limit:
                response = await client.get_object(Bucket=MotoServer.BUCKET, Key=key)
                async with response["Body"] as body:
                    await body.read()

        return await _put_then_get(put, get, keys, blobs)


def _obstore(endpoint: str) -> Any:
    from obstore.store import S3Store  # noqa: PLC0415

    return S3Store(
        MotoServer.BUCKET,
        endpoint=endpoint,
        region="us-east-1",
        checksum_algorithm="sha256",
        client_options={"allow_http": True, "connect_timeout": timedelta(seconds=2)},
    )


CLIENTS: dict[str, Measure] = {
    "obstore (threads)": obstore_threads,
    "obstore (async)": obstore_async,
    "aiobotocore": aiobotocore_loop,
}


def _installed(client: str) -> bool:
    module = client.split(maxsplit=1)[0]
    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    blobs = [os.urandom(SIZE) for _ in range(args.objects)]
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    clients = {name: measure for name, measure in CLIENTS.items() if _installed(name)}
    for name in CLIENTS.keys() - clients.keys():
        print(f"skipping {name}: not installed (pip install -e '.[s3-compare]')")
    figures = {name: figures[name] for name in clients}
    with MotoServer.start() as server:
        for _ in range(args.runs):
            for name, measure in clients.items():
                put, get = asyncio.run(measure(server.endpoint, blobs, args.concurrency))
                figures[name].append((len(blobs) / put, len(blobs) / get))
    print(
        f"{args.objects} objects of {SIZE // 1024} KiB, {args.concurrency} in flight, "
        f"median of {args.runs} runs (objects/s)"
    )
    for name, runs in figures.items():
        puts = statistics.median(p for p, _ in runs)
        gets = statistics.median(g for _, g in runs)
        print(f"  {name:<20} PUT {puts:7.1f}   GET {gets:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
