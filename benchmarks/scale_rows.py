"""Index rows for a synthetic archive, built by pacs's own ingest code without sending anything.

Loading a million instances over DICOM takes hours; the scale benchmark writes
the rows directly instead. Each series' first instance is written as a data set
(benchmarks.population_files), read back with pacs.dicom.header (as ingest reads
a received one) and turned into column values by pacs.archive.records and
pacs.index.columns, so the rows hold what ingest would have written; the other
instances of the series differ only in SOP Instance UID and Instance Number.
Instances in `with_files` also get their Part 10 file in the store (the rows
point at its hash), so that C-GET can fetch them; the rest point at a hash of
their UID with no file behind it.
"""

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from benchmarks.population import Series, Study
from benchmarks.population_files import instance_dataset as _population_instance
from pacs.archive.records import record_for
from pacs.dicom.header import read_header, split_by_level
from pacs.dicom.json_model import dumps
from pacs.index import columns
from pacs.index.records import InstanceRecord

SOURCE_AE_TITLE = "SCALEGEN"
SOP_INSTANCE_UID = "00080018"
INSTANCE_NUMBER = "00200013"
PATIENT_COLUMNS = (
    "id",
    "patient_id",
    "issuer_of_patient_id",
    "scope_study_uid",
    "patient_name",
    "patient_name_folded",
    "patient_birth_date",
    "patient_sex",
    "attributes",
)
STUDY_COLUMNS = (
    "id",
    "patient_fk",
    "study_instance_uid",
    "study_date",
    "study_time",
    "accession_number",
    "study_id",
    "referring_physician_name",
    "referring_physician_name_folded",
    "study_description",
    "modalities_in_study",
    "sop_classes_in_study",
    "number_of_series",
    "number_of_instances",
    "attributes",
    "created_at",
    "updated_at",
)
SERIES_COLUMNS = (
    "id",
    "study_fk",
    "series_instance_uid",
    "modality",
    "series_number",
    "series_description",
    "series_date",
    "series_time",
    "body_part_examined",
    "number_of_instances",
    "attributes",
)
INSTANCE_COLUMNS = (
    "id",
    "series_fk",
    "sop_instance_uid",
    "sop_class_uid",
    "instance_number",
    "transfer_syntax_uid",
    "blob_sha256",
    "blob_size",
    "attributes",
    "received_at",
    "source_ae_title",
)
COLUMNS = {
    "patient": PATIENT_COLUMNS,
    "study": STUDY_COLUMNS,
    "series": SERIES_COLUMNS,
    "instance": INSTANCE_COLUMNS,
}
Row = tuple[Any, ...]
# Writes one instance's Part 10 file into the store; returns its (sha256, size).
PutFile = Callable[[bytes], tuple[str, int]]


@dataclass(frozen=True, slots=True)
class _Blob:
    sha256: str
    size: int


@dataclass(slots=True)
class Rows:
    """One batch of rows per table, in COLUMNS order (JSON as text, times as datetimes)."""

    patient: list[Row] = field(default_factory=list)
    study: list[Row] = field(default_factory=list)
    series: list[Row] = field(default_factory=list)
    instance: list[Row] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.instance)


def dataset_bytes(ds: Dataset) -> bytes:
    """The data set as storescu sends it: Explicit VR Little Endian, no File Meta."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def part10_bytes(ds: Dataset) -> bytes:
    """The instance as a Part 10 file (benchmarks.population_files writes the same)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def instance_dataset(study: Study, series: Series, number: int) -> Dataset:
    """Instance `number` (from 1) of `series`, with the File Meta a Part 10 file needs."""
    ds = _population_instance(study, series, number, f"{series.uid}.{number}")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(ds.SOPClassUID)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _record(study: Study, series: Series) -> InstanceRecord:
    """What ingest makes of the series' first instance (its blob left for the caller)."""
    ds = instance_dataset(study, series, 1)
    header = read_header(io.BytesIO(dataset_bytes(ds)), ExplicitVRLittleEndian)
    levels = split_by_level(header)
    return record_for(levels, ExplicitVRLittleEndian, _Blob("", 0), SOURCE_AE_TITLE)


def _json(attributes: dict[str, Any]) -> str:
    return dumps(attributes)


def _instance_json(template: dict[str, Any], uid: str, number: int) -> str:
    attributes = dict(template)
    attributes[SOP_INSTANCE_UID] = {**template[SOP_INSTANCE_UID], "Value": [uid]}
    kind = type(template[INSTANCE_NUMBER]["Value"][0])
    attributes[INSTANCE_NUMBER] = {**template[INSTANCE_NUMBER], "Value": [kind(number)]}
    return _json(attributes)


class RowBuilder:
    """Numbers rows from 1 and remembers which patients it has written."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self._patients: dict[str, int] = {}
        self._ids = {table: 0 for table in COLUMNS}

    def _next(self, table: str) -> int:
        self._ids[table] += 1
        return self._ids[table]

    def study_rows(self, study: Study, rows: Rows, with_files: PutFile | None = None) -> None:
        """Add `study`'s rows (and its patient's, if new) to `rows`; `with_files` stores
        its files."""
        records = [(series, _record(study, series)) for series in study.series]
        first = records[0][1]
        patient_fk = self._patients.get(study.patient.patient_id)
        if patient_fk is None:
            patient_fk = self._patients[study.patient.patient_id] = self._next("patient")
            values = columns.patient_values(first)
            rows.patient.append(
                (
                    patient_fk,
                    *(values[c] for c in PATIENT_COLUMNS[1:-1]),
                    _json(values["attributes"]),
                )
            )
        study_fk = self._next("study")
        values = columns.study_values(first, patient_fk, self.now)
        values |= {
            "modalities_in_study": "\\".join(sorted(study.modalities)),
            "sop_classes_in_study": "\\".join(sorted({r.sop_class_uid for _, r in records})),
            "number_of_series": len(study.series),
            "number_of_instances": study.instances,
            "attributes": _json(values["attributes"]),
        }
        rows.study.append((study_fk, *(values[c] for c in STUDY_COLUMNS[1:])))
        for series, record in records:
            self._series_rows(
                study=study,
                series=series,
                record=record,
                study_fk=study_fk,
                rows=rows,
                with_files=with_files,
            )

    def _series_rows(
        self,
        *,
        study: Study,
        series: Series,
        record: InstanceRecord,
        study_fk: int,
        rows: Rows,
        with_files: PutFile | None,
    ) -> None:
        series_fk = self._next("series")
        values = columns.series_values(record, study_fk)
        values |= {
            "number_of_instances": series.instances,
            "attributes": _json(record.series_attrs),
        }
        rows.series.append((series_fk, *(values[c] for c in SERIES_COLUMNS[1:])))
        values = columns.instance_values(record, self.now)
        for number, uid in enumerate(series.instance_uids(), start=1):
            if with_files is None:
                sha256, size = hashlib.sha256(uid.encode()).hexdigest(), 0
            else:
                sha256, size = with_files(part10_bytes(instance_dataset(study, series, number)))
            rows.instance.append(
                (
                    self._next("instance"),
                    series_fk,
                    uid,
                    values["sop_class_uid"],
                    number,
                    values["transfer_syntax_uid"],
                    sha256,
                    size,
                    _instance_json(record.instance_attrs, uid, number),
                    self.now,
                    values["source_ae_title"],
                )
            )


def batches(
    builder: RowBuilder,
    studies: Iterable[Study],
    with_files: Callable[[Study], PutFile | None],
    size: int = 20_000,
) -> Iterator[Rows]:
    """Rows of `studies` in batches of about `size` instances; `with_files(study)` says
    whether (and how) that study's files are stored."""
    rows = Rows()
    for study in studies:
        builder.study_rows(study, rows, with_files(study))
        if len(rows) >= size:
            yield rows
            rows = Rows()
    if len(rows):
        yield rows
