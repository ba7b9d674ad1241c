"""Blocking pynetdicom SCU calls used as an independent peer; tests run them in threads."""

from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association as PynetdicomAssociation

from pacs.net.contexts import VERIFICATION
from tests.integration.conftest import PacsAddress

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def associate(
    address: PacsAddress, contexts: list[Any] | None = None, **options: Any
) -> PynetdicomAssociation:
    """Open a pynetdicom association; `options` set AE attributes (maximum_pdu_size...)."""
    called = options.pop("called", address.ae_title)
    ae = AE(ae_title=options.pop("ae_title", "TESTSCU"))
    for name, value in options.items():
        setattr(ae, name, value)
    ext_neg = []
    for context in contexts or [VERIFICATION]:
        if isinstance(context, tuple):
            uid, role = context
            ae.add_requested_context(uid)
            ext_neg.append(role)
        else:
            ae.add_requested_context(context)
    return ae.associate(address.host, address.port, ae_title=called, ext_neg=ext_neg or None)


def echo(address: PacsAddress, **options: Any) -> int:
    """Associate, C-ECHO, release; the echo status or -1 when no association was made."""
    assoc = associate(address, **options)
    if not assoc.is_established:
        return -1
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def find(address: PacsAddress, model: str, identifier: Any) -> tuple[int, list[Any]]:
    """C-FIND with pynetdicom; return the final status and the Pending identifiers."""
    ae = AE(ae_title="WORKSTATION")
    ae.add_requested_context(model)
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    matches = []
    final = -1
    try:
        for status, match in assoc.send_c_find(identifier, model):
            code = int(status.Status) if "Status" in status else -1
            if code in (0xFF00, 0xFF01):
                matches.append(match)
            else:
                final = code
    finally:
        assoc.release()
    return final, matches


def store(address: PacsAddress, datasets: list[Any]) -> list[int]:
    """C-STORE each data set on one association (Explicit VR Little Endian)."""
    ae = AE(ae_title="MODALITY")
    for uid in {str(ds.SOPClassUID) for ds in datasets}:
        ae.add_requested_context(uid, ["1.2.840.10008.1.2.1"])
    assoc = ae.associate(address.host, address.port, ae_title=address.ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def context_results(address: PacsAddress, ae_title: str, contexts: list[Any]) -> dict[str, int]:
    """Propose `contexts` as `ae_title`; the result of each abstract syntax (-1: no association)."""
    assoc = associate(address, contexts, ae_title=ae_title)
    if not assoc.is_established:
        return {}
    try:
        return {
            str(cx.abstract_syntax): int(cx.result or 0)
            for cx in [*assoc.accepted_contexts, *assoc.rejected_contexts]
        }
    finally:
        assoc.release()


def get_study(
    address: PacsAddress, study_uid: str, on_store: Callable[[Any], None] = lambda event: None
) -> list[int]:
    """C-GET a study as GETTER, taking its CT instances as Storage SCP (Explicit VR Little
    Endian); `on_store` sees each C-STORE event. The status of every C-GET response."""
    ae = AE(ae_title="GETTER")
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CT, ["1.2.840.10008.1.2.1"])

    def handle_store(event: Any) -> int:
        on_store(event)
        return 0

    assoc = ae.associate(
        address.host,
        address.port,
        ae_title=address.ae_title,
        ext_neg=[build_role(CT, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, handle_store)],
    )
    assert assoc.is_established
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    try:
        return [
            int(response.Status) for response, _ in assoc.send_c_get(identifier, STUDY_ROOT_GET)
        ]
    finally:
        assoc.release()
