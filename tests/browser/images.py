"""The two studies the viewer test shows, each a shape the screenshot check can recognise.

A CT series of native (uncompressed) slices whose image is a bright square in the middle
of a dark field, and a JPEG 2000 Lossless series whose image is a bright square in the
top-left quadrant: a blank, noisy or wrongly decoded viewport matches neither.
"""

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

SIZE = 256
# (first row, last row, first column, last column) of each image's bright square, as
# fractions of the image side.
CT_SQUARE = (0.25, 0.75, 0.25, 0.75)
J2K_SQUARE = (0.1, 0.45, 0.1, 0.45)


@dataclass(frozen=True, slots=True)
class Study:
    """One synthetic study: its UID, what the study list shows for it, and its instances."""

    uid: str
    patient_name: str
    description: str
    square: tuple[float, float, float, float]
    instances: list[Dataset]


def _image(square: tuple[float, float, float, float], bright: int, dark: int) -> np.ndarray:
    top, bottom, left, right = (round(edge * SIZE) for edge in square)
    pixels = np.full((SIZE, SIZE), dark, dtype=np.uint16)
    pixels[top:bottom, left:right] = bright
    return pixels


def _header(study: UID, series: UID, number: int, name: str, description: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = name
    ds.PatientID = name.replace("^", "-")
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study
    ds.StudyDate = "20261207"
    ds.StudyTime = "101500"
    ds.AccessionNumber = name.replace("^", "")[:16]
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = description
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = SIZE
    ds.PixelSpacing = [1, 1]
    return ds


def _file_meta(ds: Dataset, transfer_syntax: UID) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def ct_study(slices: int = 20) -> Study:
    """A CT series in Explicit VR Little Endian: -1000 HU around a 1000 HU square."""
    study, series = generate_uid(), generate_uid()
    name, description = "BROWSER^CT", "VIEWER TEST CT"
    pixels = _image(CT_SQUARE, bright=2024, dark=24).tobytes()
    instances = []
    for number in range(1, slices + 1):
        ds = _header(study, series, number, name, description)
        ds.SOPClassUID = CTImageStorage
        ds.Modality = "CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [0, 0, float(number * 2)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 2
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 0, 1000
        ds.PixelData = pixels
        _file_meta(ds, ExplicitVRLittleEndian)
        instances.append(ds)
    return Study(study, name, description, CT_SQUARE, instances)


def jpeg2000_study(frames: int = 4) -> Study:
    """Secondary Capture images compressed to JPEG 2000 Lossless: 8-bit, 230 on 20."""
    study, series = generate_uid(), generate_uid()
    name, description = "BROWSER^J2K", "VIEWER TEST JPEG 2000"
    pixels = _image(J2K_SQUARE, bright=230, dark=20).astype(np.uint8)
    instances = []
    for number in range(1, frames + 1):
        ds = _header(study, series, number, name, description)
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.Modality = "OT"
        ds.ConversionType = "WSD"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        _file_meta(ds, ExplicitVRLittleEndian)
        ds.PixelData = pixels.tobytes()
        ds.compress(JPEG2000Lossless, pixels, encoding_plugin="pylibjpeg")
        instances.append(ds)
    return Study(study, name, description, J2K_SQUARE, instances)
