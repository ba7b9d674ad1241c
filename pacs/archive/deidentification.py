"""De-identification of what leaves the archive (PS3.15 Annex E): the profiles with their
secrets, and the per-transfer state that de-identifies each instance read for a peer or
an export and records the replacements it handed out.

The stored files are never changed: each instance is read, de-identified in memory and
written anew as Part 10 bytes, which then go out as stored bytes would (transcoded when
the receiver needs another syntax).
"""

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, Protocol

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID

from pacs.config_deidentify import DeidentifyProfile
from pacs.dicom.deidentify import Deidentifier, Profile, Subject, hashed_uid_map
from pacs.dicom.part10 import file_meta_bytes
from pacs.errors import StartupError, TransferUnavailable
from pacs.store.secret import read_secret_file, store_secret

PatientKey = tuple[str, str]  # (Issuer of Patient ID, Patient ID)


class MappingRecord(Protocol):
    """Where the replacements handed out are kept (the index)."""

    async def record_deidentified(
        self,
        scope: str,
        uids: Mapping[str, str],
        patients: Mapping[PatientKey, tuple[str, int]],  # (pseudonym, shift in days)
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyedProfile:
    """A profile with the secret its keyed hashes use."""

    profile: Profile
    secret: bytes = field(repr=False)


def load_profiles(
    profiles: Mapping[str, DeidentifyProfile], names: Iterable[str], store_root: Path
) -> dict[str, KeyedProfile]:
    """Resolve the secrets of the profiles `names`: configured, read from the profile's
    file, or derived from the store's own secret and the profile's name. Blocking (files).

    Deriving per name keeps two profiles without a secret of their own from handing out
    the same replacements, so their recipients cannot link what each received.
    StartupError when a secret file cannot be read (or the store's made).
    """
    keyed = {}
    shared: bytes | None = None
    for name in sorted(set(names)):
        settings = profiles[name]
        if settings.secret is not None:
            secret = settings.secret.encode("utf-8")
        elif settings.secret_file is not None:
            try:
                secret = read_secret_file(settings.secret_file)
            except (OSError, ValueError) as exc:
                raise StartupError(f"[deidentify.{name}] secret_file", str(exc)) from exc
        else:
            try:
                shared = shared or store_secret(store_root)
            except (OSError, ValueError) as exc:
                raise StartupError("[storage] root", f"de-identification secret: {exc}") from exc
            secret = hmac.new(shared, f"profile\x00{name}".encode(), hashlib.sha256).digest()
        keyed[name] = KeyedProfile(settings.profile, secret)
    return keyed


class Deidentification:
    """One transfer's de-identification under one profile (`scope`: the profile's name).

    `rewrite` runs in worker threads (two at a time with a retrieve's read-ahead); the
    replacements it made accumulate in `uids` and `patients` for the index, dictionaries
    whose single-key writes need no lock.
    """

    def __init__(self, scope: str, keyed: KeyedProfile) -> None:
        self.scope = scope
        self.profile = keyed.profile
        self._hash_uid = hashed_uid_map(keyed.secret)
        self._deidentifier = Deidentifier(keyed.profile, keyed.secret, uid_map=self._replace_uid)
        self.uids: dict[str, str] = {}
        self.patients: dict[PatientKey, Subject] = {}

    def _replace_uid(self, uid: str) -> str:
        new = self._hash_uid(uid)
        if uid:
            self.uids[uid] = new
        return new

    def sent_uid(self, uid: str) -> str:
        """The UID the recipient knows for `uid`: its replacement (recorded), or itself under
        a profile that retains UIDs."""
        return uid if self.profile.retain_uids else self._replace_uid(uid)

    def apply(self, ds: Dataset) -> Dataset:
        """The de-identified copy of `ds`; DeidentificationRefused when its pixels may show
        who the patient is."""
        out = self._deidentifier(ds)
        patient_id = str(ds.get("PatientID", "") or "").strip()
        if patient_id:  # a patient without ID has a pseudonym but no key to keep it under
            issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
            self.patients[(issuer, patient_id)] = self._deidentifier.subject(ds)
        return out

    def rewrite(self, part10: BinaryIO) -> tuple[BinaryIO, str]:
        """The de-identified Part 10 file of the one read from `part10`, and its new SOP
        Instance UID. Blocking: callers run it in a worker thread."""
        buffer, out = self.rewrite_dataset(part10)
        return buffer, str(out.get("SOPInstanceUID", ""))

    def rewrite_dataset(self, part10: BinaryIO) -> tuple[BytesIO, Dataset]:
        """`rewrite`, with the de-identified data set itself."""
        try:
            ds = dcmread(part10)
        except Exception as exc:  # pydicom reports a damaged file with many exception types
            raise TransferUnavailable(f"reading the data set failed: {exc}") from exc
        out = self.apply(ds)  # DeidentificationRefused passes through
        try:
            return _part10(out), out
        except Exception as exc:  # as for reading: pydicom's writer fails in many ways
            raise TransferUnavailable(f"writing the de-identified data set failed: {exc}") from exc


def _part10(ds: Dataset) -> BytesIO:
    """`ds` as a Part 10 file, in its File Meta's transfer syntax.

    The meta is encoded by pacs and the data set by pydicom's writer directly: the same
    bytes as pydicom's save_as for about half the work (save_as copies and validates the
    meta). A deflated syntax goes through save_as, which compresses.
    """
    meta = ds.file_meta
    syntax = UID(str(meta.TransferSyntaxUID))
    if syntax.is_deflated:
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        buffer.seek(0)
        return buffer
    encoded = DicomBytesIO()
    sop_class, sop_instance = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    encoded.write(file_meta_bytes(str(sop_class), str(sop_instance), syntax, ""))
    encoded.is_implicit_VR = syntax.is_implicit_VR
    encoded.is_little_endian = syntax.is_little_endian
    write_dataset(encoded, ds)
    return BytesIO(encoded.getvalue())


class Deidentifications:
    """The profiles, which peers receive de-identified instances, and where mappings go."""

    def __init__(
        self,
        profiles: Mapping[str, KeyedProfile],
        peers: Mapping[str, str],
        mappings: MappingRecord,
    ) -> None:
        self.profiles = dict(profiles)
        self.peers = dict(peers)  # peer AE title -> profile name; replaced on reload
        self._mappings = mappings

    def start(self, name: str) -> Deidentification:
        """A transfer under the profile `name` (KeyError when there is none)."""
        return Deidentification(name, self.profiles[name])

    def for_peer(self, ae_title: str) -> Deidentification | None:
        """A transfer to the peer `ae_title`, or None when it receives instances as stored."""
        name = self.peers.get(ae_title.strip(" "))
        return None if name is None else self.start(name)

    async def record(self, transfer: Deidentification) -> None:
        """Keep the replacements `transfer` handed out, in one batch."""
        # Copies (atomic under the GIL): a discarded read-ahead may still be adding.
        uids, patients = dict(transfer.uids), dict(transfer.patients)
        if uids or patients:
            subjects = {key: (s.pseudonym, s.shift_days) for key, s in patients.items()}
            await self._mappings.record_deidentified(transfer.scope, uids, subjects)
