"""WADO-RS metadata (PS3.18 10.4.1.2): every instance's attributes as DICOM JSON, bulk data
as BulkDataURIs, built once per series and kept gzipped in the index.

A viewer opening a study asks for each series' metadata, and asks again on every
opening: the response is built from the index's JSON (patient, study and series rows,
each instance's own attributes and the layout that says where its bulk values lie),
never from the files, and kept whole, compressed (`series_metadata`). It is served as
kept while the series' fingerprint (a digest of its instances' UIDs and files, one
indexed read) is the one it was built for: an instance stored, replaced or deleted
since, by any path (C-STORE, STOW, import, reindex, deletion), changes the fingerprint,
and the next request builds it again. Nothing on the write path has to remember it.
"""

import asyncio
import gzip
import logging
import time
from typing import Any

from pacs.dicom import json_model
from pacs.errors import ResourceNotFound
from pacs.index.wado import KeptMetadata, MetadataSource, SeriesAttributes, WadoCatalogue

log = logging.getLogger(__name__)

PIXEL_DATA = "7FE00010"
SOP_INSTANCE_UID = "00080018"
ROWS = "00280010"
# Fast enough that building a 2,000-instance series costs a few ms more than JSON itself;
# the text compresses about tenfold whatever the level.
GZIP_LEVEL = 1


def instance_json(
    common: dict[str, Any], source: MetadataSource, instance_url: str
) -> dict[str, Any]:
    """One instance's metadata: its study's and series' attributes and its own, with a
    BulkDataURI for each value left out of the index as bulk data."""
    found = {**common, **source.attributes}
    layout = source.pixel_layout
    if layout is not None:
        for tag, vr, _offset, _length in layout["bulk"]:
            key = f"{tag:08X}"
            found.setdefault(key, {"vr": vr, "BulkDataURI": f"{instance_url}/bulkdata/{key}"})
        pixels = layout.get("pixels")
        if pixels is not None:
            key = f"{pixels['tag']:08X}"
            found[key] = {"vr": pixels["vr"], "BulkDataURI": f"{instance_url}/bulkdata/{key}"}
    elif ROWS in found:
        found[PIXEL_DATA] = {"vr": "OW", "BulkDataURI": f"{instance_url}/bulkdata/{PIXEL_DATA}"}
    return dict(sorted(found.items()))


def series_json(
    attributes: SeriesAttributes, sources: list[MetadataSource], base_url: str
) -> bytes:
    """The metadata of a series' instances as JSON text (a list, Instance Number order)."""
    common = {**attributes.patient, **attributes.study, **attributes.series}
    series_url = (
        f"{base_url}/studies/{attributes.study_instance_uid}"
        f"/series/{attributes.series_instance_uid}"
    )
    body = [
        instance_json(common, source, f"{series_url}/instances/{source.sop_instance_uid}")
        for source in sources
    ]
    return json_model.dumps(body).encode()


def _build(attributes: SeriesAttributes, sources: list[MetadataSource], base_url: str) -> bytes:
    text = series_json(attributes, sources, base_url)
    return gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0)


class MetadataService:
    """Series and study metadata, kept per series."""

    def __init__(self, catalogue: WadoCatalogue) -> None:
        self._catalogue = catalogue

    async def series(self, study: str, series: str, base_url: str) -> bytes:
        """The series' metadata as gzipped JSON text; ResourceNotFound for no such series."""
        fingerprint = await self._catalogue.fingerprint(series)
        kept = await self._catalogue.kept_metadata(series) if fingerprint else None
        if kept is not None and (kept.fingerprint, kept.base_url) == (fingerprint, base_url):
            return kept.body
        attributes = await self._catalogue.series_attributes(study, series)
        if fingerprint is None or attributes is None:
            raise ResourceNotFound(f"no series {series} in study {study}")
        started = time.monotonic()
        sources = list(await self._catalogue.metadata_sources(series))
        body = await asyncio.to_thread(_build, attributes, sources, base_url)
        await self._catalogue.keep_metadata(series, KeptMetadata(fingerprint, base_url, body))
        log.info(
            "metadata of series %s built: %d instances, %d bytes gzipped, %.0f ms",
            series,
            len(sources),
            len(body),
            (time.monotonic() - started) * 1000,
        )
        return body

    async def instance(self, study: str, series: str, sop: str, base_url: str) -> bytes:
        """One instance's metadata (a list of one), taken from its series' kept response."""
        body = await self.series(study, series, base_url)
        found = await asyncio.to_thread(_only, body, sop)
        if found is None:
            raise ResourceNotFound(f"no instance {sop} in series {series} of study {study}")
        return found

    async def study(self, study: str, base_url: str) -> bytes:
        """The study's metadata (every series') as gzipped JSON text."""
        series_uids = await self._catalogue.series_uids(study)
        if not series_uids:
            raise ResourceNotFound(f"no study {study}")
        parts = [await self.series(study, uid, base_url) for uid in series_uids]
        return await asyncio.to_thread(_joined, parts)


def _only(body: bytes, sop: str) -> bytes | None:
    """The element of a series' gzipped metadata whose SOP Instance UID is `sop`, gzipped."""
    for element in json_model.loads(gzip.decompress(body)):
        if (element.get(SOP_INSTANCE_UID) or {}).get("Value") == [sop]:
            text = json_model.dumps([element]).encode()
            return gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0)
    return None


def _joined(parts: list[bytes]) -> bytes:
    """The JSON lists of several series as one list, gzipped."""
    texts = [gzip.decompress(part).strip()[1:-1] for part in parts]
    body = b"[" + b",".join(text for text in texts if text) + b"]"
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
