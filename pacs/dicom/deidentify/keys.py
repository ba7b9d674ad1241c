"""What de-identification derives from a site secret: replacement UIDs, patient pseudonyms and
date shifts, each the same for the same input, so that studies sent apart still fit together.

HMAC-SHA-256 under the secret: without the secret nobody can link a replacement back to
its original by hashing candidates, and the same secret gives the same answers tomorrow.
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

UidMap = Callable[[str], str]

MAX_SHIFT_DAYS = 3652  # dates move back by 1 day to about 10 years
_UUID_ROOT = "2.25."  # a UID made of a 128-bit integer (PS3.5 B.2)


def _digest(secret: bytes, *parts: str) -> bytes:
    message = b"\x00".join(part.encode("utf-8") for part in parts)
    return hmac.new(secret, message, hashlib.sha256).digest()


def hashed_uid_map(secret: bytes) -> UidMap:
    """The default UID mapping: 2.25.<128 bits of HMAC(secret, uid)>, at most 44 characters.

    An archive that must answer "which original is this?" keeps the pairs it hands out
    (the mapping is deterministic, so keeping them is a record, not a requirement).
    """

    def replace(uid: str) -> str:
        return _UUID_ROOT + str(int.from_bytes(_digest(secret, "uid", uid)[:16], "big"))

    return replace


@dataclass(frozen=True, slots=True)
class Subject:
    """The per-patient inputs of de-identification: a pseudonym for Patient ID and Name, and
    the whole number of days by which the patient's dates move (negative: into the past)."""

    pseudonym: str
    shift_days: int


def subject_for(secret: bytes, patient_id: str, issuer: str = "", fallback: str = "") -> Subject:
    """The pseudonym and date shift of the patient `patient_id` issued by `issuer`.

    `fallback` (e.g. name and birth date) tells patients apart when the ID is empty.
    """
    key = patient_id if patient_id.strip() else "\x00" + fallback
    digest = _digest(secret, "patient", issuer, key)
    shift = int.from_bytes(digest[16:20], "big") % MAX_SHIFT_DAYS + 1
    return Subject(pseudonym="ANON" + digest[:8].hex().upper(), shift_days=-shift)
