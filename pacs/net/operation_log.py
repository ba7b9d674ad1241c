"""The log line of each DIMSE operation (who asked, what for, the outcome, its time) and the
closing line of each association (how it ended, after how long, having done what). Each
line carries its parts as the record's `fields` too, for the JSON log format; the same
edge counts each operation in the calling AE's metrics.

Successes, cancels and releases are INFO; refusals, failures, warnings and aborts are
WARNING, so an admin who reads only warnings sees every instance pacs did not take and
every association that did not end well, and why. No patient names or IDs go into these
lines: the details name levels and UIDs.
"""

import logging
import time

from pacs.metrics.recorder import PeerTally
from pacs.net import status
from pacs.net.dimse import Command, DimseMessage

log = logging.getLogger(__name__)


def operation_name(command_field: int) -> str:
    """'C-STORE' for a C-STORE-RQ, and so on."""
    return Command(command_field).name.removesuffix("_RQ").replace("_", "-")


def outcome(code: int) -> tuple[int, str]:
    """The log level and the word for a final status: 'status', 'warning' or 'refused'."""
    if code in (status.SUCCESS, status.CANCEL):
        return logging.INFO, "status"
    if status.is_warning(code):
        return logging.WARNING, "warning"
    return logging.WARNING, "refused"


def finish_operation(
    peer: str,
    request: DimseMessage,
    code: int,
    comment: str | None,
    detail: str,
    *,
    tally: PeerTally | None = None,
    stored: int = 0,
    sent: int = 0,
) -> None:
    """Count and log the final response to `request`; `detail` says what it was about
    (levels, counts). `tally` is the calling AE's metrics (none on associations pacs
    opened); `stored` and `sent` are the bytes of instances the operation stored or sent.
    """
    seconds = time.monotonic() - request.received_at
    if tally is not None:
        tally.operation_done(request.command_field, code, seconds, stored, sent)
    level, word = outcome(code)
    if not log.isEnabledFor(level):
        return  # a store's line is built for every instance; skip it unless it is shown
    uid = request.command.get("AffectedSOPInstanceUID")
    if not detail and uid:
        detail = f"SOP Instance {uid}"
    operation = operation_name(request.command_field)
    fields = {
        "peer": peer,
        "calling_ae": peer.rpartition("@")[0],
        "operation": operation,
        "status": f"0x{code:04X}",
        "outcome": word,
        "duration_ms": round(seconds * 1000, 3),
    }
    if uid:
        fields["sop_instance_uid"] = str(uid)
    if detail:
        fields["detail"] = detail
    if comment:
        fields["comment"] = comment
    log.log(
        level,
        "%s from %s: %s%s 0x%04X%s in %.1f ms",
        operation,
        peer,
        f"{detail}; " if detail else "",
        word,
        code,
        f" ({comment})" if comment else "",
        seconds * 1000,
        extra={"fields": fields},
    )


def log_association_end(label: str, how: str, why: str, seconds: float, operations: int) -> None:
    """`label` ('association from X@host:port') ended `how` ('released by the peer'...)."""
    fields = {"association": label, "ended": how, "seconds": round(seconds, 3)}
    fields["operations"] = operations
    if why:
        fields["reason"] = why
    log.log(
        logging.INFO if how.startswith("released") else logging.WARNING,
        "%s %s after %.1f s, %d operation%s%s",
        label,
        how,
        seconds,
        operations,
        "" if operations == 1 else "s",
        f": {why}" if why else "",
        extra={"fields": fields},
    )
