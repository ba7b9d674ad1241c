"""The pacs-s3 ingest target: pacs with the S3 backend, on a moto server of its own.

Configured as the pacs target, its blobs go to a bucket of a moto server (benchmarks.s3_server)
started beside it and stopped with it; it holds an instance once its object is in the bucket.
The moto server shares the machine's cores with pacs, as an object store on the same host
would.
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import obstore
from obstore.store import S3Store

from benchmarks.processes import free_port
from benchmarks.s3_server import MotoServer
from benchmarks.servers import Destination, Server, need_module

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "benchmark", "AWS_SECRET_ACCESS_KEY": "benchmark"}


def storage_toml(endpoint: str) -> str:
    """The lines of [storage] that put its blobs in the moto server's bucket."""
    return f'backend = "s3"\ns3 = {{ endpoint = "{endpoint}", bucket = "{MotoServer.BUCKET}" }}\n'


def bucket(endpoint: str) -> S3Store:
    """The benchmark bucket of the moto server at `endpoint`, with the benchmark's keys."""
    return S3Store(
        MotoServer.BUCKET,
        endpoint=endpoint,
        region="us-east-1",
        client_options={"allow_http": True},
        access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def count_objects(endpoint: str) -> Callable[[], int]:
    """Instances held, counted as the bucket's objects."""
    store = bucket(endpoint)
    return lambda: sum(len(chunk) for chunk in obstore.list(store))


def start(
    start_pacs: Callable[..., Server], workdir: Path, destinations: Sequence[Destination] = ()
) -> Server:
    """pacs (started by `start_pacs`, the pacs target's start) on a fresh moto server."""
    moto = MotoServer(free_port())
    moto.run()
    try:
        env = {**os.environ, **CREDENTIALS}
        server = start_pacs(workdir, destinations, env=env, storage=storage_toml(moto.endpoint))
    except BaseException:
        moto.stop()
        raise
    return replace(server, stored=count_objects(moto.endpoint), cleanup=moto.stop)


def start_with(start_pacs: Callable[..., Server]) -> Callable[[Path], Server]:
    """The target's start function, on the pacs target's own."""

    def start_s3(workdir: Path, destinations: Sequence[Destination] = ()) -> Server:
        return start(start_pacs, workdir, destinations)

    return start_s3


def missing() -> str | None:
    return need_module("moto")()
