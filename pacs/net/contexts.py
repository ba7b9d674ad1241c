"""The presentation contexts this AE accepts, and the ones it proposes as requestor."""

from collections.abc import Iterable, Sequence

from pydicom.uid import (
    UID,
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.presentation import AllStoragePresentationContexts, PresentationContext

VERIFICATION = UID("1.2.840.10008.1.1")

# Uncompressed syntaxes in the order we prefer them when a peer offers several.
UNCOMPRESSED = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)


def acceptable(
    abstract_syntaxes: Iterable[str],
    transfer_syntaxes: Sequence[str],
    *,
    allow_role_selection: bool = True,
) -> list[PresentationContext]:
    """Contexts we accept for these SOP Classes, in our order of transfer-syntax preference.

    With role selection allowed, a requestor that proposes to be SCP (C-GET
    storage sub-operations) or both SCU and SCP is granted what it asks for.
    """
    contexts = []
    for uid in abstract_syntaxes:
        cx = PresentationContext()
        cx.abstract_syntax = UID(uid)
        cx.transfer_syntax = [UID(ts) for ts in transfer_syntaxes]
        if allow_role_selection:
            cx.scu_role = True
            cx.scp_role = True
        contexts.append(cx)
    return contexts


def proposal(
    abstract_syntax: str,
    transfer_syntaxes: Sequence[str] = UNCOMPRESSED[:2],
    *,
    scu_role: bool | None = None,
    scp_role: bool | None = None,
) -> PresentationContext:
    """One context to propose as requestor; roles set only to ask for role selection."""
    cx = PresentationContext()
    cx.abstract_syntax = UID(abstract_syntax)
    cx.transfer_syntax = [UID(ts) for ts in transfer_syntaxes]
    cx.scu_role = scu_role
    cx.scp_role = scp_role
    return cx


def verification_contexts() -> list[PresentationContext]:
    return acceptable([VERIFICATION], UNCOMPRESSED)


def storage_sop_classes() -> list[str]:
    """Every Storage SOP Class pynetdicom knows: an archive accepts them all as acceptor."""
    return [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]


def storage_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pydicom knows, uncompressed first.

    Storage keeps the bytes as sent, so any encoding is acceptable; preferring
    the uncompressed ones means a lossy syntax is never chosen over a lossless
    offer in the same context.
    """
    rest = [str(ts) for ts in AllTransferSyntaxes if ts not in UNCOMPRESSED]
    return [*map(str, UNCOMPRESSED), *rest]


def storage_contexts() -> list[PresentationContext]:
    return acceptable(storage_sop_classes(), storage_transfer_syntaxes())


QUERY_RETRIEVE_FIND = (
    "1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root
    "1.2.840.10008.5.1.4.1.2.2.1",  # Study Root
    "1.2.840.10008.5.1.4.1.2.3.1",  # Patient/Study Only (retired, still sent)
)


def query_contexts() -> list[PresentationContext]:
    return acceptable(QUERY_RETRIEVE_FIND, UNCOMPRESSED, allow_role_selection=False)


QUERY_RETRIEVE_MOVE = (
    "1.2.840.10008.5.1.4.1.2.1.2",
    "1.2.840.10008.5.1.4.1.2.2.2",
    "1.2.840.10008.5.1.4.1.2.3.2",
)
QUERY_RETRIEVE_GET = (
    "1.2.840.10008.5.1.4.1.2.1.3",
    "1.2.840.10008.5.1.4.1.2.2.3",
    "1.2.840.10008.5.1.4.1.2.3.3",
)


def retrieve_contexts() -> list[PresentationContext]:
    return acceptable(
        [*QUERY_RETRIEVE_MOVE, *QUERY_RETRIEVE_GET], UNCOMPRESSED, allow_role_selection=False
    )


STORAGE_COMMITMENT = UID("1.2.840.10008.1.20.1")
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"


def commitment_contexts() -> list[PresentationContext]:
    """Storage Commitment Push Model; role selection lets a requester take the SCU role only."""
    return acceptable([STORAGE_COMMITMENT], UNCOMPRESSED)
