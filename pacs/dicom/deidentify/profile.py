"""A de-identification profile: the Basic Profile plus the options a site picks (PS3.15 E.3).

Each option resolves an attribute's action from Table E.1-1's column for it, and
names itself in De-identification Method Code Sequence with its CID 7050 code.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from pacs.dicom.deidentify.table import Option

BASIC_PROFILE_CODE: Code = codes.DCM.BasicApplicationConfidentialityProfile


class Dates(StrEnum):
    """What becomes of dates and times (the two Retain Longitudinal Temporal options)."""

    REMOVE = "remove"  # the Basic Profile's action
    SHIFT = "shift"  # Retain Longitudinal Temporal Information with Modified Dates
    KEEP = "keep"  # Retain Longitudinal Temporal Information with Full Dates


@dataclass(frozen=True, slots=True)
class SafePrivateTag:
    """A private attribute known to carry no identity: its group, its block's private
    creator and its element within the block (the low byte), as PS3.15 E.3.10 names them."""

    group: int
    creator: str
    element: int


@dataclass(frozen=True, slots=True)
class Profile:
    """The Basic Application Level Confidentiality Profile and its chosen options.

    Burned-in annotation is refused unless `accept_burned_in_annotation` says the site
    cleans pixels another way: pixel data are never changed here.
    """

    name: str = "basic"
    dates: Dates = Dates.REMOVE
    retain_patient_characteristics: bool = False
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_uids: bool = False
    clean_descriptors: bool = False
    safe_private: frozenset[SafePrivateTag] = field(default_factory=frozenset)
    accept_burned_in_annotation: bool = False

    def options(self) -> tuple[Option, ...]:
        """The table columns this profile applies, in the standard's order."""
        chosen = {
            Option.RETAIN_SAFE_PRIVATE: bool(self.safe_private),
            Option.RETAIN_UIDS: self.retain_uids,
            Option.RETAIN_DEVICE_IDENTITY: self.retain_device_identity,
            Option.RETAIN_INSTITUTION_IDENTITY: self.retain_institution_identity,
            Option.RETAIN_PATIENT_CHARACTERISTICS: self.retain_patient_characteristics,
            Option.RETAIN_FULL_DATES: self.dates is Dates.KEEP,
            Option.RETAIN_MODIFIED_DATES: self.dates is Dates.SHIFT,
            Option.CLEAN_DESCRIPTORS: self.clean_descriptors,
        }
        return tuple(option for option in Option if chosen.get(option, False))

    def method_codes(self) -> list[Code]:
        """CID 7050 codes for De-identification Method Code Sequence: the profile, then options."""
        return [BASIC_PROFILE_CODE, *(OPTION_CODES[option] for option in self.options())]


_DCM = codes.DCM
OPTION_CODES: dict[Option, Code] = {
    Option.RETAIN_SAFE_PRIVATE: _DCM.RetainSafePrivateOption,
    Option.RETAIN_UIDS: _DCM.RetainUidsOption,
    Option.RETAIN_DEVICE_IDENTITY: _DCM.RetainDeviceIdentityOption,
    Option.RETAIN_INSTITUTION_IDENTITY: _DCM.RetainInstitutionIdentityOption,
    Option.RETAIN_PATIENT_CHARACTERISTICS: _DCM.RetainPatientCharacteristicsOption,
    Option.RETAIN_FULL_DATES: _DCM.RetainLongitudinalTemporalInformationFullDatesOption,
    Option.RETAIN_MODIFIED_DATES: _DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
    Option.CLEAN_DESCRIPTORS: _DCM.CleanDescriptorsOption,
    Option.CLEAN_STRUCTURED_CONTENT: _DCM.CleanStructuredContentOption,
    Option.CLEAN_GRAPHICS: _DCM.CleanGraphicsOption,
}
