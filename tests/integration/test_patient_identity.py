"""Patient identity: instances without Patient ID, and contradicting demographics."""

import asyncio
import logging
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import DatasetFactory
from tests.integration.conftest import PacsAddress, run_dcmtk
from tests.integration.scu import find, store

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
SUCCESS = 0x0000
# Three people's files, none with a Patient ID (absent in the first, empty in the others).
WITHOUT_PATIENT_ID = {
    "ExplVR_BigEnd.dcm": "Anonymized",
    "test-SR.dcm": "Test^S R",
    "reportsi.dcm": "Last Name^First Name",
}


def _study_query(**keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientID = ""
    query.PatientName = ""
    query.NumberOfStudyRelatedInstances = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def _patient_query(**keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = ""
    query.PatientName = ""
    query.NumberOfPatientRelatedStudies = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


async def _find(pacs: PacsAddress, model: str, query: Dataset) -> list[Dataset]:
    status, matches = await asyncio.to_thread(find, pacs, model, query)
    assert status == SUCCESS
    return matches


async def test_studies_without_patient_id_answer_with_their_own_patient(
    running_pacs: PacsAddress,
) -> None:
    paths = [get_testdata_file(name) for name in WITHOUT_PATIENT_ID]
    code, output = await run_dcmtk(
        "storescu", running_pacs.host, str(running_pacs.port), *map(str, paths)
    )
    assert code == 0, output

    studies = await _find(running_pacs, STUDY_ROOT_FIND, _study_query())
    by_test_pattern = await _find(running_pacs, STUDY_ROOT_FIND, _study_query(PatientName="Test*"))
    patients = await _find(running_pacs, PATIENT_ROOT_FIND, _patient_query())

    assert sorted(str(m.PatientName) for m in studies) == sorted(WITHOUT_PATIENT_ID.values())
    assert [str(m.PatientName) for m in by_test_pattern] == ["Test^S R"]
    assert sorted(str(m.PatientName) for m in patients) == sorted(WITHOUT_PATIENT_ID.values())
    assert [int(m.NumberOfPatientRelatedStudies) for m in patients] == [1, 1, 1]


async def test_instances_of_one_study_without_patient_id_share_its_patient(
    running_pacs: PacsAddress, make_ct: DatasetFactory
) -> None:
    study = generate_uid()
    first = make_ct(PatientID="", PatientName="Nobody^First", StudyInstanceUID=study)
    second = make_ct(PatientID=None, PatientName="Nobody^First", StudyInstanceUID=study)
    other = make_ct(PatientID="", PatientName="Nobody^Second")

    assert await asyncio.to_thread(store, running_pacs, [first, second, other]) == [SUCCESS] * 3

    patients = await _find(running_pacs, PATIENT_ROOT_FIND, _patient_query())
    studies = await _find(running_pacs, STUDY_ROOT_FIND, _study_query(StudyInstanceUID=study))
    assert sorted(str(m.PatientName) for m in patients) == ["Nobody^First", "Nobody^Second"]
    assert [int(m.NumberOfStudyRelatedInstances) for m in studies] == [2]


async def test_contradicting_demographics_keep_the_first_and_are_reported(
    running_pacs: PacsAddress, make_ct: DatasetFactory, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_ct(PatientID="P-9", PatientName="Doe^Jane", PatientBirthDate="19700101")
    renamed = make_ct(PatientID="P-9", PatientName="Roe^Richard", PatientBirthDate="19700101")
    misfiled = make_ct(PatientID="P-10", StudyInstanceUID=first.StudyInstanceUID)
    caplog.set_level(logging.DEBUG, logger="pacs")

    statuses = await asyncio.to_thread(store, running_pacs, [first, renamed, misfiled])

    assert statuses == [SUCCESS] * 3
    studies = await _find(running_pacs, STUDY_ROOT_FIND, _study_query(PatientID="P-9"))
    assert [str(m.PatientName) for m in studies] == ["Doe^Jane", "Doe^Jane"]
    warnings = [r.getMessage() for r in caplog.records if "patient attributes differ" in r.message]
    assert len(warnings) == 2
    assert renamed.SOPInstanceUID in warnings[0]
    assert "differing: PatientName " in warnings[0]
    # Names only at DEBUG: the ordinary log (level INFO) carries no patient names.
    named = [r for r in caplog.records if "Roe^Richard" in r.getMessage()]
    assert [r.levelno for r in named] == [logging.DEBUG]
    assert "PatientName='Doe^Jane'" in named[0].getMessage()
    assert misfiled.SOPInstanceUID in warnings[1]
    assert "PatientID='P-10'" in warnings[1]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.message in warnings)
    assert running_pacs.app is not None
    assert running_pacs.app.ingest.counters.patient_conflicts == 2


async def test_the_same_patient_written_differently_is_no_conflict(
    running_pacs: PacsAddress, make_ct: DatasetFactory, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_ct(PatientID="P-11", PatientName="Doe^Jane", PatientSex="F")
    same = [
        make_ct(PatientID="P-11", PatientName="DOE^JANE^^^", PatientSex="F"),
        make_ct(PatientID="P-11", PatientName="Doe^Jane", PatientSex=None, PatientBirthDate=""),
        make_ct(PatientID="", PatientName="Doe^Jane", StudyInstanceUID=first.StudyInstanceUID),
    ]
    caplog.set_level(logging.WARNING, logger="pacs")

    assert await asyncio.to_thread(store, running_pacs, [first, *same]) == [SUCCESS] * 4

    assert not [r for r in caplog.records if "patient attributes differ" in r.message]
    assert running_pacs.app is not None
    assert running_pacs.app.ingest.counters.patient_conflicts == 0


def test_pydicom_files_without_patient_id_are_what_the_tests_assume() -> None:
    from pydicom import dcmread

    for name, patient_name in WITHOUT_PATIENT_ID.items():
        ds = dcmread(Path(get_testdata_file(name) or ""), stop_before_pixels=True)
        assert not ds.get("PatientID")
        assert str(ds.PatientName) == patient_name
