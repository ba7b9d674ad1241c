"""Export: the instances a selection names, de-identified, written as Part 10 files.

Files are named by their new UIDs, `<study>/<series>/<instance>.dcm`; the stored
originals are not changed. An instance the profile refuses (identity possibly burned
into the pixels), or whose stored file cannot be read, is counted with its reason and
left out; a file that cannot be written stops the export (StoreUnavailable).
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pacs.archive.deidentification import Deidentification, Deidentifications
from pacs.archive.retrieve import InstanceSource
from pacs.audit.auditor import Transfer
from pacs.dicom.selection import Selection
from pacs.errors import TransferUnavailable
from pacs.index.locate import StoredInstance
from pacs.store.protocol import BlobStore

_NAMED_BY = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


class FileSink(Protocol):
    def write(self, name: str, data: bytes) -> None: ...


@dataclass
class ExportReport:
    """What an export wrote, and what it left out with the reason (by original UID)."""

    written: int = 0
    bytes_written: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)


def _export_one(
    instance: StoredInstance,
    store: BlobStore,
    deidentification: Deidentification,
    sink: FileSink,
) -> int:
    """De-identify one instance and write it; its size. Blocking: run in a worker thread."""
    with store.open(instance.blob_sha256) as stream:
        part10, ds = deidentification.rewrite_dataset(stream)
    data = part10.getvalue()
    names = [str(ds.get(key, "") or "unknown") for key in _NAMED_BY]
    sink.write("/".join(names) + ".dcm", data)
    return len(data)


async def export(
    source: InstanceSource,
    store: BlobStore,
    selection: Selection,
    deidentification: Deidentification,
    sink: FileSink,
    *,
    deidentifications: Deidentifications,
    transfer: Transfer,
    progress: Callable[[int], None] = lambda _done: None,
) -> ExportReport:
    """Write every instance of `selection` de-identified into `sink`, then keep the mapping.

    `progress` is told of each instance done (written or refused).
    """
    report = ExportReport()
    try:
        async for page in source.locate(selection):
            for instance in page:
                transfer.sending(instance.study_instance_uid, instance.patient_id)
                try:
                    size = await asyncio.to_thread(
                        _export_one, instance, store, deidentification, sink
                    )
                except (TransferUnavailable, OSError, ValueError) as exc:
                    report.refused.append((instance.sop_instance_uid, str(exc)))
                else:
                    report.written += 1
                    report.bytes_written += size
                    transfer.sent(
                        instance.study_instance_uid, instance.patient_id, instance.sop_class_uid
                    )
                progress(1)
    finally:
        await deidentifications.record(deidentification)
    return report
