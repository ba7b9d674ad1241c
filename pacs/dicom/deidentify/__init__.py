"""De-identification by PS3.15 Annex E: the Basic Application Level Confidentiality Profile
and its options, applied to pydicom Datasets, from the standard's own action table."""

from pacs.dicom.deidentify.deidentifier import Deidentifier, deidentify
from pacs.dicom.deidentify.keys import Subject, UidMap, hashed_uid_map, subject_for
from pacs.dicom.deidentify.profile import Dates, Profile, SafePrivateTag
from pacs.dicom.deidentify.table import action_table

__all__ = [
    "Dates",
    "Deidentifier",
    "Profile",
    "SafePrivateTag",
    "Subject",
    "UidMap",
    "action_table",
    "deidentify",
    "hashed_uid_map",
    "subject_for",
]
