"""Synthetic, deterministic Part 10 files for benchmarks: 512x512 CT slices and small images.

Every UID and pixel value derives from the seed and the instance's position, so
the same arguments always write byte-identical files. Usage:
python -m benchmarks.dataset --kind ct --count 256 --out DIR [--studies N] [--patients N]
"""

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

# pydicom's own registered root: deterministic UIDs need no organisation root of our own.
UID_PREFIX = "1.2.826.0.1.3680043.8.498."
CT_SIZE = 512
SMALL_SIZE = 64
_FIRST_STUDY_DATE = date(2024, 1, 8)


class Kind(StrEnum):
    """What the generated instances look like."""

    CT = "ct"  # CT Image Storage, 512x512, 16 bits allocated, 12 stored, HU via rescale
    SMALL = "small"  # Secondary Capture, 64x64, 8-bit MONOCHROME2


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one instance sits in the patient / study / series hierarchy."""

    index: int
    patient: int
    study: int
    number: int  # 1-based position within its series


def _uid(seed: int, *parts: object) -> UID:
    return generate_uid(UID_PREFIX, entropy_srcs=[str(seed), *map(str, parts)])


def placements(count: int, studies: int, patients: int) -> Iterator[Placement]:
    """Spread `count` instances over contiguous studies (one series each), studies over patients."""
    studies = max(1, min(studies, count))
    patients = max(1, min(patients, studies))
    per_study = -(-count // studies)
    for index in range(count):
        study = index // per_study
        yield Placement(index, study % patients, study, index % per_study + 1)


def _patient_module(ds: Dataset, seed: int, where: Placement) -> None:
    ds.PatientName = f"BENCH^PATIENT{where.patient:04d}"
    ds.PatientID = f"BENCH{seed:02d}-{where.patient:05d}"
    ds.PatientBirthDate = f"{1940 + where.patient % 60}0{1 + where.patient % 9}15"
    ds.PatientSex = "MF"[where.patient % 2]
    ds.PatientAge = f"{84 - where.patient % 60:03d}Y"


def _study_module(ds: Dataset, seed: int, where: Placement, modality: str) -> None:
    when = _FIRST_STUDY_DATE + timedelta(days=where.study)
    ds.StudyInstanceUID = _uid(seed, "study", where.study)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = f"{8 + where.study % 10:02d}1500"
    ds.SeriesTime = f"{8 + where.study % 10:02d}1612"
    ds.ContentTime = f"{8 + where.study % 10:02d}17{where.number % 60:02d}"
    ds.AccessionNumber = f"A{seed:02d}{where.study:07d}"
    ds.StudyID = str(where.study + 1)
    ds.ReferringPhysicianName = "REFERRER^BENCH"
    ds.StudyDescription = "CT CHEST WITH CONTRAST" if modality == "CT" else "SCREEN CAPTURE"
    ds.SeriesInstanceUID = _uid(seed, "series", where.study)
    ds.SeriesNumber = 2
    ds.Modality = modality
    ds.InstanceNumber = where.number
    ds.SOPInstanceUID = _uid(seed, "instance", where.index)


def _image_pixel_module(ds: Dataset, pixels: "np.ndarray", bits_stored: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()


def _ct_phantom() -> "np.ndarray":
    """A body-shaped ellipse of soft tissue with lungs and a spine, in stored values (HU + 1024)."""
    y, x = np.mgrid[0:CT_SIZE, 0:CT_SIZE].astype(np.float32) - CT_SIZE / 2
    image = np.zeros((CT_SIZE, CT_SIZE), np.float32)  # air: -1024 HU
    image[(x / 220) ** 2 + (y / 160) ** 2 <= 1] = 1064  # soft tissue: +40 HU
    for side in (-1, 1):
        image[((x - side * 90) / 70) ** 2 + ((y + 10) / 100) ** 2 <= 1] = 174  # lung: -850 HU
    image[(x / 25) ** 2 + ((y - 110) / 25) ** 2 <= 1] = 1724  # vertebra: +700 HU
    return image


def _ct_pixels(seed: int, where: Placement, phantom: "np.ndarray") -> "np.ndarray":
    rng = np.random.default_rng([seed, where.index])
    noise = rng.normal(0.0, 12.0, phantom.shape).astype(np.float32)
    shift = int(where.number % 16) - 8  # anatomy drifts slice to slice
    body = np.roll(phantom, shift, axis=0)
    return np.clip(body + noise * (body > 0), 0, 4095).astype("<u2")


def ct_instance(seed: int, where: Placement, phantom: "np.ndarray") -> Dataset:
    """One axial CT slice, 0.7 mm pixels, 1.25 mm apart, stored values in HU + 1024."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SpecificCharacterSet = "ISO_IR 100"
    _patient_module(ds, seed, where)
    _study_module(ds, seed, where, "CT")
    ds.Manufacturer = "PACS BENCHMARK"
    ds.InstitutionName = "BENCH HOSPITAL"
    ds.StationName = "CT01"
    ds.SeriesDescription = "AXIAL 1.25 STANDARD"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = _uid(seed, "frame", where.study)
    ds.PositionReferenceIndicator = ""
    ds.AcquisitionNumber = 1
    ds.KVP = "120"
    ds.XRayTubeCurrent = 250
    ds.ExposureTime = 500
    ds.ConvolutionKernel = "STANDARD"
    ds.SliceThickness = "1.25"
    z = -100.0 - 1.25 * (where.number - 1)
    ds.ImagePositionPatient = ["-179.3", "-179.3", f"{z:.2f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = f"{z:.2f}"
    ds.PixelSpacing = ["0.7", "0.7"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    _image_pixel_module(ds, _ct_pixels(seed, where, phantom), bits_stored=12)
    return ds


def small_instance(seed: int, where: Placement) -> Dataset:
    """One 64x64 8-bit Secondary Capture image: a gradient with a little noise."""
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SpecificCharacterSet = "ISO_IR 100"
    _patient_module(ds, seed, where)
    _study_module(ds, seed, where, "OT")
    ds.ConversionType = "WSD"
    ds.SeriesDescription = "SCREEN CAPTURES"
    rng = np.random.default_rng([seed, where.index])
    ramp = np.add.outer(np.arange(SMALL_SIZE), np.arange(SMALL_SIZE)) + where.number
    pixels = (ramp + rng.integers(0, 8, ramp.shape)) % 256
    _image_pixel_module(ds, pixels.astype(np.uint8), bits_stored=8)
    return ds


def write_part10(ds: Dataset, path: Path) -> None:
    """Write `ds` as a Part 10 file in Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def generate(
    out: Path,
    kind: Kind | str,
    count: int,
    *,
    studies: int = 4,
    patients: int = 2,
    seed: int = 1,
) -> list[Path]:
    """Write `count` instances of `kind` under `out`; return their paths in instance order."""
    kind = Kind(kind)
    out.mkdir(parents=True, exist_ok=True)
    phantom = _ct_phantom() if kind is Kind.CT else None
    paths = []
    for where in placements(count, studies, patients):
        if phantom is not None:
            ds = ct_instance(seed, where, phantom)
        else:
            ds = small_instance(seed, where)
        path = out / f"{kind.value}{where.index:06d}.dcm"
        write_part10(ds, path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=[k.value for k in Kind], default=Kind.CT.value)
    parser.add_argument("--count", type=int, required=True, help="number of instances")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--studies", type=int, default=4, help="studies (one series each)")
    parser.add_argument("--patients", type=int, default=2, help="patients the studies belong to")
    parser.add_argument("--seed", type=int, default=1, help="seed for UIDs and pixel noise")
    args = parser.parse_args()
    paths = generate(
        args.out,
        args.kind,
        args.count,
        studies=args.studies,
        patients=args.patients,
        seed=args.seed,
    )
    size = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} {args.kind} instances, {size / 1e6:.1f} MB, to {args.out}")


if __name__ == "__main__":
    main()
