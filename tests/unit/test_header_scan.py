"""The one-walk header path gives what pydicom's path gives: same levels, same refusals."""

import warnings
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from benchmarks.dataset import Kind, generate
from pacs.dicom.header import check_identity, read_header, split_by_level
from pacs.dicom.header_scan import read_levels
from pacs.dicom.json_model import dumps
from pacs.dicom.part10 import seek_data_set
from pacs.errors import DataSetMismatch, InvalidInstance
from tests.conftest import make_instance

FILES = sorted(p for p in {*get_testdata_files(), *get_charset_files()} if Path(p).is_file())
Outcome = tuple[str, Any]


def _announced(data: bytes, syntax: str) -> tuple[str, str]:
    """The SOP Class and Instance UIDs a sender would announce (what pydicom reads)."""
    try:
        dataset = read_header(BytesIO(data), syntax)
    except Exception:
        return ("1.2.3", "1.2.3.4")
    return (str(dataset.get("SOPClassUID", "")), str(dataset.get("SOPInstanceUID", "")))


def _outcome(run: Callable[[], dict[Any, dict[str, Any]]]) -> Outcome:
    """The stored JSON text of each level, or the refusal; warnings are not errors here,
    as in the server (the test configuration makes them errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            levels = run()
        except InvalidInstance as exc:
            return (type(exc).__name__, str(exc))
    return ("levels", {level: dumps(part) for level, part in levels.items()})


def _pydicom_path(fp: BinaryIO, syntax: str, uids: tuple[str, str]) -> Outcome:
    def run() -> dict[Any, dict[str, Any]]:
        dataset = read_header(fp, syntax)
        check_identity(dataset, *uids)
        return split_by_level(dataset)

    return _outcome(run)


def _both_paths(data: bytes, syntax: str, tmp_path: Path) -> Outcome:
    """Run the scan on bytes and on a file (mapped), assert each equals pydicom's path."""
    uids = _announced(data, syntax)
    expected = _pydicom_path(BytesIO(data), syntax, uids)
    assert _outcome(lambda: read_levels(data, syntax, *uids)) == expected
    path = tmp_path / "instance"
    path.write_bytes(b"HEAD" + data)  # the data set after other bytes, as in a Part 10 file
    with path.open("rb") as fp:
        fp.seek(4)
        in_file = _pydicom_path(fp, syntax, uids)
        fp.seek(4)
        assert _outcome(lambda: read_levels(fp, syntax, *uids)) == in_file
    return expected


def _data_sets(path: str) -> list[tuple[bytes, str]]:
    """The file's data set and syntax; a file without File Meta Information is tried as both
    little-endian syntaxes, as a sender could announce either."""
    raw = Path(path).read_bytes()
    try:
        with open(path, "rb") as fp:
            start = seek_data_set(fp)
    except ValueError:
        body = raw[132:] if raw[128:132] == b"DICM" else raw
        return [(body, ImplicitVRLittleEndian), (body, ExplicitVRLittleEndian)]
    return [(raw[start.offset :], start.transfer_syntax_uid)]


@pytest.mark.parametrize("path", FILES, ids=lambda path: Path(path).name)
def test_scan_equals_pydicom_on_each_test_file(path: str, tmp_path: Path) -> None:
    for data, syntax in _data_sets(path):
        _both_paths(data, syntax, tmp_path)


@pytest.mark.parametrize("path", FILES, ids=lambda path: Path(path).name)
def test_scan_refuses_what_pydicom_refuses_when_cut_short(path: str, tmp_path: Path) -> None:
    data, syntax = _data_sets(path)[0]
    cuts = sorted({len(data) * share // 13 for share in range(1, 13)} | {len(data) - 1})
    for cut in cuts:
        _both_paths(data[:cut], syntax, tmp_path)


def test_scan_refuses_an_instance_other_than_announced(tmp_path: Path) -> None:
    path = generate(tmp_path / "small", Kind.SMALL, 1)[0]
    data, syntax = _data_sets(str(path))[0]
    sop_class, _ = _announced(data, syntax)

    with pytest.raises(DataSetMismatch) as scanned:
        read_levels(data, syntax, sop_class, "1.2.3.4")
    with pytest.raises(DataSetMismatch) as parsed:
        check_identity(read_header(BytesIO(data), syntax), sop_class, "1.2.3.4")

    assert str(scanned.value) == str(parsed.value)


@pytest.mark.parametrize("kind", list(Kind))
def test_scan_equals_pydicom_on_benchmark_instances(kind: Kind, tmp_path: Path) -> None:
    for path in generate(tmp_path / kind.value, kind, 3, studies=2, patients=2):
        data, syntax = _data_sets(str(path))[0]
        assert _both_paths(data, syntax, tmp_path)[0] == "levels"


def _with_sequences(charset: str, name: str) -> Dataset:
    """An instance with a defined and an undefined length sequence, nested, private
    elements, binary values and tags as values; `name` in `charset`."""
    ds = make_instance(SpecificCharacterSet=charset, PatientName=name)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D3000", "SRT", name
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = ds.SOPClassUID
    referenced.ReferencedSOPInstanceUID = "1.2.3.4"
    referenced.PurposeOfReferenceCodeSequence = [code]
    ds.ProcedureCodeSequence = [code, code]
    ds.ReferencedImageSequence = [referenced]
    ds["ReferencedImageSequence"].is_undefined_length = True
    block = ds.private_block(0x0019, "PACS TEST", create=True)
    block.add_new(0x01, "LO", "private text")
    block.add_new(0x02, "US", 7)
    block.add_new(0x03, "SQ", [code])
    block.add_new(0x04, "OB", bytes(range(256)) * 3 + b"\x01\x02")  # beyond 768: a URI
    block.add_new(0x05, "AT", [0x00100010, 0x00100020])
    ds.ICCProfile = bytes(range(200))  # OB in the dictionary: inline
    ds.FrameIncrementPointer = 0x00181063
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("ISO_IR 100", "Doe^Jane"),
        ("ISO_IR 100", "Müller^Jürgen"),
        ("ISO_IR 192", "Wang^XiaoDong=王^小東"),
    ],
)
def test_scan_equals_pydicom_with_sequences_private_elements_and_character_sets(
    syntax: str, charset: str, name: str, tmp_path: Path
) -> None:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, syntax == ImplicitVRLittleEndian
    write_dataset(buffer, _with_sequences(charset, name))

    assert _both_paths(buffer.getvalue(), syntax, tmp_path)[0] == "levels"


@pytest.mark.parametrize("kind", list(Kind))
def test_benchmark_instances_are_read_without_pydicoms_parse(
    kind: Kind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = generate(tmp_path / kind.value, kind, 1)[0]
    data, syntax = _data_sets(str(path))[0]
    uids = _announced(data, syntax)
    expected = _pydicom_path(BytesIO(data), syntax, uids)

    def refuse(*_: object) -> None:
        raise AssertionError("pydicom parsed the header")

    monkeypatch.setattr("pacs.dicom.header_scan.parse_header", refuse)
    monkeypatch.setattr("pacs.dicom.header_scan.read_header", refuse)

    assert _outcome(lambda: read_levels(data, syntax, *uids)) == expected
