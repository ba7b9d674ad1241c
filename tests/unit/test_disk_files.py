"""The files `pacs import` is given: folders walked in order, each file once, DICOMDIRs read."""

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MediaStorageDirectoryStorage

from pacs.archive.disk_files import walk


def _dicomdir(path: Path, *file_ids: list[str]) -> None:
    """A DICOMDIR whose image records reference `file_ids` (enough for what walk reads)."""
    ds = Dataset()
    records = []
    for file_id in file_ids:
        record = Dataset()
        record.DirectoryRecordType = "IMAGE"
        record.ReferencedFileID = file_id
        records.append(record)
    ds.DirectoryRecordSequence = records
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


def test_folders_are_walked_in_name_order_and_each_file_comes_once(tmp_path: Path) -> None:
    for name in ("b/2.dcm", "b/1.dcm", "a.txt", "c/d/3"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    found = walk([tmp_path, tmp_path / "b" / "1.dcm", tmp_path / "nowhere"])

    assert found.files == [tmp_path / n for n in ("a.txt", "b/1.dcm", "b/2.dcm", "c/d/3")]
    assert [(m.path, m.reason) for m in found.missing] == [
        (str(tmp_path / "nowhere"), "no such file or directory")
    ]


def test_a_dicomdir_adds_its_files_in_its_order_and_reports_the_missing(tmp_path: Path) -> None:
    for name in ("IMG2", "IMG1"):
        (tmp_path / "DICOM" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "DICOM" / name).write_bytes(b"x")
    _dicomdir(tmp_path / "DICOMDIR", ["DICOM", "IMG2"], ["DICOM", "IMG1"], ["DICOM", "GONE"])

    found = walk([tmp_path])

    assert found.dicomdirs == 1
    assert found.files == [tmp_path / "DICOM" / "IMG2", tmp_path / "DICOM" / "IMG1"]
    assert [m.reason for m in found.missing] == [f"listed in {tmp_path / 'DICOMDIR'}, not found"]
