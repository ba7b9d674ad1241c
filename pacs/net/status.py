"""DIMSE status codes (PS3.7 C, PS3.4) by name, and the one table from domain errors to
statuses, per service where the services answer the same error differently."""

from enum import StrEnum

from pacs.errors import (
    DataSetMismatch,
    InstanceConflict,
    InvalidIdentifier,
    InvalidInstance,
    PacsError,
    StoreFull,
    StoreUnavailable,
    TransferUnavailable,
)

SUCCESS = 0x0000
PENDING = 0xFF00
PENDING_WITH_WARNINGS = 0xFF01
CANCEL = 0xFE00

# General failures (PS3.7 C.5)
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_CLASS = 0x0118
NO_SUCH_SOP_INSTANCE = 0x0112
SOP_CLASS_NOT_SUPPORTED = 0x0122
NO_SUCH_ACTION_TYPE = 0x0123
UNRECOGNIZED_OPERATION = 0x0211
MISSING_ATTRIBUTE = 0x0120
INVALID_ARGUMENT_VALUE = 0x0115
NOT_AUTHORIZED = 0x0124  # Refused: Not Authorized (PS3.7 C.5)

# General warnings (PS3.7 C.4): the ones outside the 0xBxxx range
OPTIONAL_ATTRIBUTES_NOT_SUPPORTED = 0x0001
ATTRIBUTE_LIST_ERROR = 0x0107
ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116
_WARNING_CLASS = 0xB  # the first hex digit of every service-specific warning

# Storage (PS3.4 B.2.3)
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
COERCION_OF_DATA_ELEMENTS = 0xB000
ELEMENTS_DISCARDED = 0xB006
DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007
STORE_WARNINGS = frozenset(
    {COERCION_OF_DATA_ELEMENTS, ELEMENTS_DISCARDED, DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING}
)

# Query/Retrieve (PS3.4 C.4.1.1.4)
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC000
MOVE_DESTINATION_UNKNOWN = 0xA801
SUB_OPERATIONS_FAILED = 0xA702  # refused: out of resources, unable to perform sub-operations
SUB_OPERATIONS_WARNING = 0xB000  # sub-operations complete, one or more failures


class Service(StrEnum):
    """The services whose handlers answer domain errors; each has its row in STATUS_FOR_ERROR."""

    STORE = "C-STORE"
    FIND = "C-FIND"
    RETRIEVE = "C-MOVE/C-GET"
    COMMITMENT = "N-ACTION"


# Per service, the status of each error class; an error takes the entry of its nearest
# class, and PacsError's entry answers the domain errors a service names no better.
STATUS_FOR_ERROR: dict[Service, dict[type[PacsError], int]] = {
    Service.STORE: {
        StoreFull: OUT_OF_RESOURCES,
        StoreUnavailable: OUT_OF_RESOURCES,
        InvalidInstance: CANNOT_UNDERSTAND,
        DataSetMismatch: DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        InstanceConflict: DUPLICATE_SOP_INSTANCE,
        InvalidIdentifier: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        TransferUnavailable: PROCESSING_FAILURE,
        PacsError: PROCESSING_FAILURE,
    },
    Service.FIND: {
        InvalidIdentifier: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        PacsError: UNABLE_TO_PROCESS,
    },
    Service.RETRIEVE: {
        InvalidIdentifier: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        PacsError: UNABLE_TO_PROCESS,
    },
    # N-ACTION has no identifier: an unreadable Action Information is an argument whose
    # value is inappropriate (PS3.7 C.5.10).
    Service.COMMITMENT: {
        InvalidIdentifier: INVALID_ARGUMENT_VALUE,
        PacsError: PROCESSING_FAILURE,
    },
}


def for_error(error: BaseException, service: Service) -> int:
    """The status `service` answers `error` with: the entry of its nearest class in the
    service's table; an exception that is no PacsError is a processing failure."""
    table = STATUS_FOR_ERROR[service]
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return PROCESSING_FAILURE


def is_final(status: int) -> bool:
    """Pending statuses are followed by more responses; every other one ends the operation."""
    return status not in (PENDING, PENDING_WITH_WARNINGS)


def is_warning(status: int) -> bool:
    """A warning status: a service-specific 0xBxxx one or a general warning (PS3.7 C.4)."""
    return status >> 12 == _WARNING_CLASS or status in (
        OPTIONAL_ATTRIBUTES_NOT_SUPPORTED,
        ATTRIBUTE_LIST_ERROR,
        ATTRIBUTE_VALUE_OUT_OF_RANGE,
    )
