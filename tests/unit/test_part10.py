"""The File Meta Information pacs writes in front of every received data set, and reads back
(PS3.10 7.1)."""

import io

import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from pacs.dicom.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacs.dicom.part10 import data_set_offset, file_meta_bytes, read_file_meta, seek_data_set

CT = "1.2.840.10008.5.1.4.1.1.2"


def _pydicom_meta(sop_class: str, sop_instance: str, syntax: str, source: str) -> bytes:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if source:
        meta.SourceApplicationEntityTitle = source
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("sop_instance", "syntax", "source"),
    [
        ("1.2.3.4", "1.2.840.10008.1.2.1", "STORESCU"),  # even lengths
        ("1.2.3.45", "1.2.840.10008.1.2", "CT1"),  # odd lengths: padded
        ("1.2.3.4.5.6.7.8.9", "1.2.840.10008.1.2.4.50", ""),  # no source AE title
    ],
)
def test_file_meta_is_what_pydicom_writes(sop_instance: str, syntax: str, source: str) -> None:
    ours = file_meta_bytes(CT, sop_instance, syntax, source)

    assert ours == _pydicom_meta(CT, sop_instance, syntax, source)


def test_file_meta_reads_back_and_locates_the_data_set() -> None:
    meta = file_meta_bytes(CT, "1.2.3.45", "1.2.840.10008.1.2.1", "CT1")
    data_set = b"\x08\x00\x16\x00UI\x1a\x00" + CT.encode() + b"\x00"

    ds = dcmread(DicomBytesIO(meta + data_set))

    assert data_set_offset(meta) == len(meta)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.SourceApplicationEntityTitle == "CT1"
    assert ds.SOPClassUID == CT


@pytest.mark.parametrize("source", ["CT1", ""])
def test_seek_data_set_reads_the_syntax_and_stops_where_the_data_set_starts(source: str) -> None:
    meta = _pydicom_meta(CT, "1.2.3.45", "1.2.840.10008.1.2.4.50", source)
    data_set = b"\x08\x00\x16\x00UI\x1a\x00" + CT.encode() + b"\x00"
    stored = io.BytesIO(meta + data_set)
    stored.seek(17)  # wherever the caller left it

    start = seek_data_set(stored)

    assert start == ("1.2.840.10008.1.2.4.50", len(meta))
    assert stored.read() == data_set


def test_seek_data_set_refuses_a_meta_group_cut_short() -> None:
    meta = file_meta_bytes(CT, "1.2.3.45", "1.2.840.10008.1.2.1", "CT1")

    with pytest.raises(ValueError, match="cut short"):
        seek_data_set(io.BytesIO(meta[:-20]))


def test_seek_data_set_refuses_a_meta_group_without_a_transfer_syntax() -> None:
    sop_class = (
        b"\x02\x00\x02\x00UI" + len(CT + "\x00").to_bytes(2, "little") + CT.encode() + b"\x00"
    )
    group_length = b"\x02\x00\x00\x00UL\x04\x00" + len(sop_class).to_bytes(4, "little")
    meta = b"\x00" * 128 + b"DICM" + group_length + sop_class

    with pytest.raises(ValueError, match="Transfer Syntax UID"):
        seek_data_set(io.BytesIO(meta + b"\x08\x00\x16\x00"))


@pytest.mark.parametrize("source", ["STORESCU", "CT1", ""])
def test_read_file_meta_returns_what_file_meta_bytes_wrote(source: str) -> None:
    written = file_meta_bytes(CT, "1.2.3.45", "1.2.840.10008.1.2", source) + b"rest"
    fp = io.BytesIO(written)

    meta = read_file_meta(fp)

    assert meta == (CT, "1.2.3.45", "1.2.840.10008.1.2", source, len(written) - 4)
    assert fp.read() == b"rest"


def test_read_file_meta_refuses_a_meta_group_without_the_sop_instance() -> None:
    written = file_meta_bytes(CT, "", "1.2.840.10008.1.2.1", "")

    with pytest.raises(ValueError, match="no sop_instance_uid"):
        read_file_meta(io.BytesIO(written))


def test_read_file_meta_refuses_what_is_not_part_10() -> None:
    with pytest.raises(ValueError, match="not a Part 10 file"):
        read_file_meta(io.BytesIO(b"plain text, not DICOM" * 10))
