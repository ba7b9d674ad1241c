"""Which patient row an instance belongs to, and when its attributes contradict that row.

A patient is Patient ID within its Issuer. Patient ID is Type 2 (PS3.3 C.7.1.1): an
instance without one gets a patient confined to its study, so that the studies of
different people never share a row. A patient row keeps the attributes of the first
instance that created it (first wins): a later instance with other demographics is
indexed under it and reported as a conflict, never used to rewrite the row.
"""

from pacs.index.records import InstanceRecord, PatientColumns

PatientKey = tuple[str, str, str]
"""(Patient ID, Issuer of Patient ID, scope): the scope is the Study Instance UID when
Patient ID is empty, else ''."""


def patient_key(record: InstanceRecord) -> PatientKey:
    """Return the key of the patient row the record belongs to."""
    patient = record.patient
    scope = "" if patient.patient_id else record.study.study_instance_uid
    return (patient.patient_id, patient.issuer_of_patient_id, scope)


def contradicts(kept: PatientColumns, received: PatientColumns) -> bool:
    """Whether an instance's patient attributes say another person than the row keeps.

    Only values present on both sides count: an instance that leaves birth date or
    sex empty, or gives a name in fewer component groups, does not contradict.
    Names compare without case and trailing empty components.
    """
    return (
        _differ(kept.patient_id, received.patient_id)
        or _differ(kept.issuer_of_patient_id, received.issuer_of_patient_id)
        or _names_differ(kept.patient_name, received.patient_name)
        or _differ(kept.patient_birth_date, received.patient_birth_date)
        or _differ(kept.patient_sex, received.patient_sex)
    )


def _differ(kept: str | None, received: str | None) -> bool:
    return bool(kept) and bool(received) and kept != received


def _names_differ(kept: str | None, received: str | None) -> bool:
    if not kept or not received:
        return False
    groups = zip(kept.split("="), received.split("="), strict=False)
    return any(_differ(_fold(a), _fold(b)) for a, b in groups)


def _fold(group: str) -> str:
    """A person name component group as compared: upper case, no trailing '^' or spaces."""
    return "^".join(part.strip() for part in group.upper().split("^")).rstrip("^")
