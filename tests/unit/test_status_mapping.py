"""status.for_error: the status each service answers each domain error with (PS3.4, PS3.7)."""

import inspect

import pytest

from pacs import errors
from pacs.errors import (
    ConfigError,
    DataSetMismatch,
    DeidentificationRefused,
    InstanceConflict,
    InvalidIdentifier,
    InvalidInstance,
    PacsError,
    ProtocolError,
    ResourceNotFound,
    SchemaError,
    StartupError,
    StoreFull,
    StoreUnavailable,
    TransferUnavailable,
)
from pacs.net.status import Service, for_error

# One instance of every error class pacs.errors defines.
ERRORS: list[PacsError] = [
    PacsError("root"),
    ConfigError("key: bad"),
    StartupError("server.port", "in use"),
    SchemaError("too new"),
    InvalidInstance("no SOP Instance UID"),
    DataSetMismatch("another SOP Class"),
    InvalidIdentifier("bad level"),
    InstanceConflict("duplicate"),
    TransferUnavailable("no codec"),
    DeidentificationRefused("burned-in annotation"),
    StoreUnavailable("index down"),
    StoreFull("below minimum"),
    ProtocolError("bad PDU"),
    ResourceNotFound("no such frame"),  # a WADO-RS refusal; DIMSE names it no better
]

# The values are the standard's (PS3.4 B.2.3, C.4.1.1.4, C.4.2.1.5; PS3.7 C.5), written out
# rather than taken from pacs.net.status, so that a wrong constant fails here.
PROCESSING_FAILURE = 0x0110
UNABLE_TO_PROCESS = 0xC000
STORE: dict[type[PacsError], int] = {
    StoreFull: 0xA700,  # Refused: Out of Resources
    StoreUnavailable: 0xA700,
    InvalidInstance: 0xC000,  # Error: Cannot understand
    DataSetMismatch: 0xA900,  # Error: Data Set does not match SOP Class
    InstanceConflict: 0x0111,  # Failure: Duplicate SOP Instance
    InvalidIdentifier: 0xA900,
}
# Identifier does not match SOP Class
QUERY_RETRIEVE: dict[type[PacsError], int] = {InvalidIdentifier: 0xA900}
COMMITMENT: dict[type[PacsError], int] = {InvalidIdentifier: 0x0115}  # Invalid Argument Value

EXPECTED: dict[Service, tuple[dict[type[PacsError], int], int]] = {
    Service.STORE: (STORE, PROCESSING_FAILURE),
    Service.FIND: (QUERY_RETRIEVE, UNABLE_TO_PROCESS),
    Service.RETRIEVE: (QUERY_RETRIEVE, UNABLE_TO_PROCESS),
    Service.COMMITMENT: (COMMITMENT, PROCESSING_FAILURE),
}


def test_every_error_class_is_covered() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, PacsError) and cls.__module__ == errors.__name__
    }
    assert {type(error) for error in ERRORS} == defined


def test_every_service_is_covered() -> None:
    assert set(EXPECTED) == set(Service)


@pytest.mark.parametrize("service", list(Service))
@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_each_error_has_its_status_per_service(error: PacsError, service: Service) -> None:
    named, otherwise = EXPECTED[service]
    assert for_error(error, service) == named.get(type(error), otherwise)


@pytest.mark.parametrize("service", list(Service))
def test_a_subclass_takes_its_nearest_class_entry(service: Service) -> None:
    class DiskGone(StoreFull):
        pass

    class NewDomainError(PacsError):
        pass

    assert for_error(DiskGone("gone"), service) == for_error(StoreFull("full"), service)
    assert for_error(NewDomainError("new"), service) == for_error(PacsError("root"), service)


@pytest.mark.parametrize("service", list(Service))
@pytest.mark.parametrize("error", [ValueError("x"), KeyError("k"), RuntimeError("r")])
def test_an_exception_outside_the_domain_is_a_processing_failure(
    error: Exception, service: Service
) -> None:
    assert for_error(error, service) == PROCESSING_FAILURE
