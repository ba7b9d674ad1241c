"""Which attributes belong to which level of the patient/study/series/instance hierarchy.

From the Query/Retrieve keys of PS3.4 C.6.1.1 and C.6.2.1 and the Patient,
General Study, Patient Study, General Series and General Equipment modules
(PS3.3 C.7): what the index keeps once per patient, study and series.
"""

from enum import StrEnum


class QueryLevel(StrEnum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


PATIENT_KEYWORDS = frozenset(
    {
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence",
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientSex",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "EthnicGroup",
        "PatientComments",
        "PatientSpeciesDescription",
        "PatientBreedDescription",
        "ResponsiblePerson",
        "PatientIdentityRemoved",
    }
)

STUDY_KEYWORDS = frozenset(
    {
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "IssuerOfAccessionNumberSequence",
        "StudyID",
        "ReferringPhysicianName",
        "StudyDescription",
        "ProcedureCodeSequence",
        "NameOfPhysiciansReadingStudy",
        "AdmittingDiagnosesDescription",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "Occupation",
        "AdditionalPatientHistory",
        "OtherStudyNumbers",
        "ReasonForPerformedProcedureCodeSequence",
    }
)

SERIES_KEYWORDS = frozenset(
    {
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "SeriesDate",
        "SeriesTime",
        "BodyPartExamined",
        "Laterality",
        "ProtocolName",
        "OperatorsName",
        "PerformingPhysicianName",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "PerformedProcedureStepID",
        "PerformedProcedureStepDescription",
        "RequestAttributesSequence",
        "Manufacturer",
        "ManufacturerModelName",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "StationName",
        "DeviceSerialNumber",
        "SoftwareVersions",
    }
)

# Kept with every level so each level's stored attributes decode on their own.
EVERY_LEVEL = frozenset({"SpecificCharacterSet"})


def level_of(keyword: str) -> QueryLevel:
    """The level an attribute is kept at; anything not listed belongs to the instance."""
    if keyword in PATIENT_KEYWORDS:
        return QueryLevel.PATIENT
    if keyword in STUDY_KEYWORDS:
        return QueryLevel.STUDY
    if keyword in SERIES_KEYWORDS:
        return QueryLevel.SERIES
    return QueryLevel.IMAGE
