"""What WADO-RS reads from the index: instances with their layout, series for metadata,
and the kept series metadata responses (`series_metadata`)."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pacs.index.database_errors import index_errors
from pacs.index.models import Instance, Patient, Series, SeriesMetadata, Study
from pacs.index.reads import Reads


@dataclass(frozen=True, slots=True)
class FrameSource:
    """One instance as a frame or bulk data request needs it."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    blob_sha256: str
    attributes: dict[str, Any]
    pixel_layout: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SeriesAttributes:
    """A series' own attributes and those of its study and patient (DICOM JSON)."""

    study_instance_uid: str
    series_instance_uid: str
    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MetadataSource:
    """One instance of a series as its metadata needs it."""

    sop_instance_uid: str
    attributes: dict[str, Any]
    pixel_layout: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class KeptMetadata:
    fingerprint: str
    base_url: str
    body: bytes


_WITHIN = (
    select(Instance.id)
    .join(Series, Instance.series_fk == Series.id)
    .join(Study, Series.study_fk == Study.id)
    .where(
        Study.study_instance_uid == bindparam("study"),
        Series.series_instance_uid == bindparam("series"),
    )
)
# One instance for a frame or bulk data request: a viewer sends one per frame.
_FRAME_SOURCE = select(
    Instance.sop_class_uid,
    Instance.sop_instance_uid,
    Instance.transfer_syntax_uid,
    Instance.blob_sha256,
    Instance.attributes,
    Instance.pixel_layout,
).where(Instance.sop_instance_uid == bindparam("sop"), Instance.id.in_(_WITHIN.scalar_subquery()))
_FINGERPRINT = cast(
    "Select[Any]",
    select(Instance.sop_instance_uid, Instance.blob_sha256)
    .join(Series, Instance.series_fk == Series.id)
    .where(Series.series_instance_uid == bindparam("series"))
    .order_by(Instance.id),
)
_KEPT = cast(
    "Select[Any]",
    select(SeriesMetadata.fingerprint, SeriesMetadata.base_url, SeriesMetadata.body).where(
        SeriesMetadata.series_instance_uid == bindparam("series")
    ),
)


class WadoCatalogue:
    """Reads through `Reads` (no transaction held); writes in a session of their own."""

    def __init__(self, reads: Reads, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._reads = reads
        self._sessionmaker = sessionmaker

    async def frame_source(self, study: str, series: str, sop: str) -> FrameSource | None:
        """The instance `sop` of that study and series, or None."""
        rows = await self._reads.run(_FRAME_SOURCE, {"study": study, "series": series, "sop": sop})
        if not rows:
            return None
        row = rows[0]
        return FrameSource(str(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4], row[5])

    async def note_layout(self, sop: str, blob_sha256: str, layout: dict[str, Any]) -> None:
        """Keep a layout found on request, for the file it was found in."""
        statement = (
            update(Instance)
            .where(Instance.sop_instance_uid == sop, Instance.blob_sha256 == blob_sha256)
            .values(pixel_layout=layout)
        )
        with index_errors():
            async with self._sessionmaker.begin() as session:
                await session.execute(statement)

    async def series_uids(self, study: str) -> list[str]:
        """The series of a study, in the order they were first stored."""
        statement = (
            select(Series.series_instance_uid)
            .join(Study, Series.study_fk == Study.id)
            .where(Study.study_instance_uid == study)
            .order_by(Series.id)
        )
        return [str(row[0]) for row in await self._reads.all(statement)]

    async def fingerprint(self, series: str) -> str | None:
        """A digest of the series' (SOP Instance UID, file) pairs; None for no instance."""
        rows = await self._reads.run(_FINGERPRINT, {"series": series})
        if not rows:
            return None
        digest = hashlib.sha256()
        for sop, sha256 in rows:
            digest.update(f"{sop}\0{sha256}\n".encode())
        return digest.hexdigest()

    async def series_attributes(self, study: str, series: str) -> SeriesAttributes | None:
        statement = (
            select(Patient.attributes, Study.attributes, Series.attributes)
            .join(Study, Series.study_fk == Study.id)
            .join(Patient, Study.patient_fk == Patient.id)
            .where(Study.study_instance_uid == study, Series.series_instance_uid == series)
        )
        rows = await self._reads.all(statement)
        if not rows:
            return None
        patient, study_attrs, series_attrs = rows[0]
        return SeriesAttributes(study, series, patient, study_attrs, series_attrs)

    async def metadata_sources(self, series: str) -> Sequence[MetadataSource]:
        """The series' instances in Instance Number order, with attributes and layouts."""
        statement = (
            select(Instance.sop_instance_uid, Instance.attributes, Instance.pixel_layout)
            .join(Series, Instance.series_fk == Series.id)
            .where(Series.series_instance_uid == series)
            .order_by(Instance.instance_number, Instance.id)
        )
        rows = await self._reads.all(statement)
        return [MetadataSource(str(row[0]), row[1], row[2]) for row in rows]

    async def kept_metadata(self, series: str) -> KeptMetadata | None:
        rows = await self._reads.run(_KEPT, {"series": series})
        if not rows:
            return None
        fingerprint, base_url, body = rows[0]
        return KeptMetadata(str(fingerprint), str(base_url), bytes(body))

    async def keep_metadata(self, series: str, kept: KeptMetadata) -> None:
        """Keep a series' metadata response, replacing what was kept before."""
        row = SeriesMetadata(
            series_instance_uid=series,
            fingerprint=kept.fingerprint,
            base_url=kept.base_url,
            body=kept.body,
            built_at=datetime.now(UTC),
        )
        with index_errors():
            try:
                async with self._sessionmaker.begin() as session:
                    await session.execute(
                        delete(SeriesMetadata).where(SeriesMetadata.series_instance_uid == series)
                    )
                    session.add(row)
            except IntegrityError:
                pass  # a concurrent request kept it first: the same response, or a newer one
