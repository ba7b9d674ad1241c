"""The de-identification hook of C-MOVE and C-GET: which transfers are de-identified, what the
audit trail says of them, and keeping their mappings once they end."""

import logging

from pacs.archive.deidentification import Deidentification, Deidentifications
from pacs.errors import PacsError

log = logging.getLogger(__name__)


def start(deidentifications: Deidentifications | None, peer: str) -> Deidentification | None:
    """The de-identification of a transfer to the peer `peer`; None: it gets stored instances."""
    return deidentifications.for_peer(peer) if deidentifications is not None else None


def as_sent(deidentification: Deidentification | None, uids: list[str]) -> list[str]:
    """The SOP Instance UIDs `uids` as the transfer's recipient knows them."""
    if deidentification is None:
        return uids
    return [deidentification.sent_uid(uid) for uid in uids]


def describe(deidentification: Deidentification | None) -> str:
    """What the audit event and the log line add about de-identification."""
    if deidentification is None:
        return ""
    return f", de-identified under profile {deidentification.scope!r}"


async def finish(
    deidentifications: Deidentifications | None, deidentification: Deidentification | None
) -> None:
    """Keep the replacements the transfer handed out. They are keyed hashes, so a failure
    loses no information (the next transfer writes them again): it is logged, not raised."""
    if deidentifications is None or deidentification is None:
        return
    try:
        await deidentifications.record(deidentification)
    except PacsError as exc:
        log.warning(
            "de-identification mappings of profile %r not kept: %s", deidentification.scope, exc
        )
