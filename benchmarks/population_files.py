"""Part 10 files for a synthetic population: tiny instances, so indexing dominates loading.

Images carry 8x8 8-bit pixels, reports no pixels at all; every attribute a
C-FIND of the query benchmark matches or returns is set, with the SOP Class
of each modality.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    UltrasoundImageStorage,
)

from benchmarks.population import BODY_PARTS, Series, Study

SOP_CLASSES = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "CR": ComputedRadiographyImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "US": UltrasoundImageStorage,
    "MG": DigitalMammographyXRayImageStorageForPresentation,
    "PT": PositronEmissionTomographyImageStorage,
    "NM": NuclearMedicineImageStorage,
    "SR": BasicTextSRStorage,
}
_PIXELS = (np.arange(64, dtype=np.uint8) * 4).reshape(8, 8).tobytes()


@dataclass(frozen=True, slots=True)
class Written:
    """What a call to `write_studies` wrote: one directory per association, and totals."""

    directories: list[Path]
    instances: int
    bytes: int


def _study_dataset(study: Study) -> Dataset:
    """The patient and study attributes every instance of `study` repeats."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = study.patient.name
    ds.PatientID = study.patient.patient_id
    ds.PatientBirthDate = study.patient.birth_date
    ds.PatientSex = study.patient.sex
    ds.StudyInstanceUID = study.uid
    ds.StudyDate = study.date
    ds.StudyTime = study.time
    ds.AccessionNumber = study.accession
    ds.StudyID = str(study.index + 1)
    ds.StudyDescription = study.description
    ds.ReferringPhysicianName = "REFERRER^BENCH"
    return ds


def instance_dataset(study: Study, series: Series, number: int, sop_uid: str) -> Dataset:
    ds = _study_dataset(study)
    ds.SOPClassUID = SOP_CLASSES[series.modality]
    ds.SOPInstanceUID = sop_uid
    ds.SeriesInstanceUID = series.uid
    ds.Modality = series.modality
    ds.SeriesNumber = series.number
    ds.SeriesDescription = series.description
    ds.SeriesDate = study.date
    ds.BodyPartExamined = BODY_PARTS.get(series.modality, "CHEST")
    ds.InstanceNumber = number
    ds.ContentDate, ds.ContentTime = study.date, study.time
    if series.modality == "SR":
        ds.ValueType = "CONTAINER"
        ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
        return ds
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = _PIXELS
    return ds


def _save(ds: Dataset, path: Path) -> int:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ds.SOPClassUID)
    meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def write_studies(studies: Iterable[Study], out: Path, groups: int) -> Written:
    """Write every instance of `studies`, whole studies dealt round-robin to `groups` folders."""
    directories = [out / f"part{group}" for group in range(groups)]
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
    instances = size = 0
    for position, study in enumerate(studies):
        directory = directories[position % groups]
        for series in study.series:
            for number, sop_uid in enumerate(series.instance_uids(), start=1):
                path = directory / f"{study.index:06d}-{series.number:03d}-{number:04d}.dcm"
                size += _save(instance_dataset(study, series, number, sop_uid), path)
                instances += 1
    return Written(directories, instances, size)
