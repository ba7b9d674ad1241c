"""Apply a profile to a pydicom Dataset: every element, inside sequences too, takes its action.

The result is a new Dataset; the original is not changed (pydicom may convert its raw
elements on access, as any read does). Elements kept as they are share their encoded
value with the original, so a kept Pixel Data is never decoded or copied, and the
result keeps the original's transfer syntax and character set.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from pacs.dicom.deidentify.actions import Action, Resolved, compile_actions
from pacs.dicom.deidentify.burned_in import refuse_burned_in
from pacs.dicom.deidentify.keys import Subject, UidMap, hashed_uid_map, subject_for
from pacs.dicom.deidentify.profile import Dates, Profile, SafePrivateTag
from pacs.dicom.deidentify.values import DATE_VRS, dummy, shift_dates
from pacs.dicom.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
_META = 0x0002  # File Meta Information, misplaced in a data set by some writers
# Repeating groups (PS3.5 7.6): curves, and overlays whose data may be burned-in text.
_CURVES = range(0x5000, 0x5100)
_OVERLAYS = range(0x6000, 0x6100)
_TEMPORAL_STATE = {Dates.REMOVE: "REMOVED", Dates.SHIFT: "MODIFIED", Dates.KEEP: "UNMODIFIED"}
# File Meta Information elements carried over; the SOP Instance and implementation are set
# anew, and the source AE titles and private information left behind.
_META_KEPT = (0x00020001, 0x00020002, 0x00020010)


def _vr_of(element: DataElement | RawDataElement) -> str:
    """The element's VR, the dictionary's for a public tag: an SQ sent as UN must be opened."""
    try:
        vr = dictionary_VR(element.tag)
    except KeyError:
        vr = element.VR or "UN"
    return vr if element.VR in (None, "UN") or vr == "SQ" else str(element.VR)


def _share(element: DataElement | RawDataElement) -> DataElement | RawDataElement:
    return element if isinstance(element, RawDataElement) else copy.copy(element)


def _copy_encoding(source: Dataset, target: Dataset) -> None:
    implicit, little = source.original_encoding
    if implicit is not None and little is not None:
        target.set_original_encoding(implicit, little, source.original_character_set)


@dataclass(frozen=True, slots=True)
class _Walk:
    actions: Mapping[int, Resolved]
    profile: Profile
    uid_map: UidMap
    subject: Subject

    def dataset(self, source: Dataset) -> Dataset:
        target = Dataset()
        _copy_encoding(source, target)
        creators: set[int] = set()
        for tag in list(map(int, source.keys())):
            group, element = tag >> 16, tag & 0xFFFF
            if element == 0 or group == _META or group in _CURVES or group in _OVERLAYS:
                continue  # group lengths go stale; meta is made anew; repeating groups go whole
            if group & 1:
                self._private(source, tag, target, creators)
            elif (resolved := self.actions.get(tag)) is None:
                self._keep(source, tag, target)
            else:
                self._apply(source, tag, resolved, target)
        for creator in creators:
            target[creator] = _share(source.get_item(creator))
        return target

    def _keep(self, source: Dataset, tag: int, target: Dataset) -> None:
        element = source.get_item(tag)
        if _vr_of(element) == "SQ":
            items = [self.dataset(item) for item in source[tag].value]
            target.add(DataElement(tag, "SQ", Sequence(items)))
        else:
            target[tag] = _share(element)

    def _private(self, source: Dataset, tag: int, target: Dataset, creators: set[int]) -> None:
        """Keep a private element only when the safe-private list names it (E.3.10)."""
        element = tag & 0xFFFF
        creator_tag = (tag & 0xFFFF0000) | (element >> 8)
        if not self.profile.safe_private or element < 0x1000 or creator_tag not in source:
            return
        creator = str(source[creator_tag].value or "").strip()
        if SafePrivateTag(tag >> 16, creator, element & 0xFF) in self.profile.safe_private:
            creators.add(creator_tag)
            self._keep(source, tag, target)

    def _apply(self, source: Dataset, tag: int, resolved: Resolved, target: Dataset) -> None:
        action = resolved.action
        if action is Action.REMOVE:
            return
        element = source.get_item(tag)
        vr = _vr_of(element).split(" or ")[0]
        if action is Action.SHIFT and vr not in DATE_VRS:
            action = resolved.otherwise
        if vr == "SQ":
            self._sequence(source, tag, action, target)
        elif action is Action.KEEP:
            target[tag] = _share(element)
        elif action is not Action.REMOVE:
            # Only dates and UIDs are derived from the original; others are not decoded.
            value = source[tag].value if action is Action.SHIFT or vr == "UI" else None
            target.add(DataElement(tag, vr, self._value(value, tag, vr, action)))

    def _sequence(self, source: Dataset, tag: int, action: Action, target: Dataset) -> None:
        if action is Action.REMOVE:
            return
        if action is Action.EMPTY:
            items: list[Dataset] = []
        elif action is Action.DUMMY:
            items = [Dataset()]
        else:  # kept, cleaned or UID-replaced: each item de-identified in turn
            items = [self.dataset(item) for item in source[tag].value]
        target.add(DataElement(tag, "SQ", Sequence(items)))

    def _value(self, value: Any, tag: int, vr: str, action: Action) -> Any:
        if tag in (PATIENT_ID, PATIENT_NAME):
            return self.subject.pseudonym  # a dummy that keeps patients apart (Z, D)
        if action is Action.SHIFT:
            return shift_dates(value, vr, self.subject.shift_days)
        if vr == "UI" and action in (Action.UID, Action.DUMMY):
            if value:
                return self._uids(value)
            return self.uid_map("") if action is Action.DUMMY else value
        if action is Action.EMPTY:
            return None
        return dummy(vr)

    def _uids(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.uid_map(value.rstrip("\x00 "))
        return [self.uid_map(str(uid).rstrip("\x00 ")) for uid in value]


def _method_sequence(profile: Profile) -> Sequence:
    items = []
    for code in profile.method_codes():
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme_designator
        item.CodeMeaning = code.meaning
        items.append(item)
    return Sequence(items)


def _mark(target: Dataset, profile: Profile) -> None:
    """Say what was done (PS3.15 E.1.1 item 6, PS3.3 C.7.1.1 and C.7.6.1)."""
    target.PatientIdentityRemoved = "YES"
    target.DeidentificationMethod = [code.meaning for code in profile.method_codes()]
    target.DeidentificationMethodCodeSequence = _method_sequence(profile)
    target.LongitudinalTemporalInformationModified = _TEMPORAL_STATE[profile.dates]


def _file_meta(source: FileMetaDataset, target: Dataset, uid_map: UidMap) -> FileMetaDataset:
    meta = FileMetaDataset()
    for tag in _META_KEPT:
        if tag in source:
            meta[tag] = copy.copy(source[tag])
    if "SOPInstanceUID" in target:
        meta.MediaStorageSOPInstanceUID = target.SOPInstanceUID
    elif source.get("MediaStorageSOPInstanceUID"):  # a DICOMDIR names itself only here
        meta.MediaStorageSOPInstanceUID = UID(uid_map(str(source.MediaStorageSOPInstanceUID)))
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def deidentify(ds: Dataset, profile: Profile, *, uid_map: UidMap, subject: Subject) -> Dataset:
    """A de-identified copy of `ds` under `profile` (PS3.15 Annex E).

    `uid_map` gives the replacement of each UID (the same for the same UID, so that
    references between instances still resolve); `subject` is the patient's pseudonym
    and date shift. Raises DeidentificationRefused for identity that may be in pixels.
    """
    if not profile.accept_burned_in_annotation:
        refuse_burned_in(ds)
    walk = _Walk(compile_actions(profile), profile, uid_map, subject)
    target = walk.dataset(ds)
    _mark(target, profile)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        target.file_meta = _file_meta(meta, target, str if profile.retain_uids else uid_map)
    return target


class Deidentifier:
    """A profile with its secret: UIDs, pseudonyms and date shifts derived from the secret
    (or UIDs from `uid_map`, e.g. one the archive records), the same every time."""

    def __init__(self, profile: Profile, secret: bytes, uid_map: UidMap | None = None) -> None:
        self.profile = profile
        self._secret = secret
        self.uid_map = uid_map or hashed_uid_map(secret)

    def subject(self, ds: Dataset) -> Subject:
        """The pseudonym and date shift of the patient `ds` belongs to."""
        fallback = f"{ds.get('PatientName', '')}\x00{ds.get('PatientBirthDate', '')}"
        return subject_for(
            self._secret,
            str(ds.get("PatientID", "") or ""),
            str(ds.get("IssuerOfPatientID", "") or ""),
            fallback,
        )

    def __call__(self, ds: Dataset) -> Dataset:
        """De-identify one instance."""
        return deidentify(ds, self.profile, uid_map=self.uid_map, subject=self.subject(ds))
