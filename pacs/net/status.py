"""DIMSE status codes (PS3.7 C, PS3.4) by name, and the one table from domain errors to statuses."""

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

# Storage (PS3.4 B.2.3)
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000

# Query/Retrieve (PS3.4 C.4.1.1.4)
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC000
MOVE_DESTINATION_UNKNOWN = 0xA801
SUB_OPERATIONS_FAILED = 0xA702  # refused: out of resources, unable to perform sub-operations
SUB_OPERATIONS_WARNING = 0xB000  # sub-operations complete, one or more failures
COERCION_OF_DATA_ELEMENTS = 0xB000

STATUS_FOR_ERROR: dict[type[PacsError], int] = {
    StoreFull: OUT_OF_RESOURCES,
    StoreUnavailable: OUT_OF_RESOURCES,
    InvalidInstance: CANNOT_UNDERSTAND,
    DataSetMismatch: DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    InstanceConflict: DUPLICATE_SOP_INSTANCE,
    InvalidIdentifier: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    TransferUnavailable: PROCESSING_FAILURE,
}


def for_error(error: PacsError) -> int:
    """The status that answers `error`: the entry of its nearest class in STATUS_FOR_ERROR."""
    for cls in type(error).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return PROCESSING_FAILURE


def is_final(status: int) -> bool:
    """Pending statuses are followed by more responses; every other one ends the operation."""
    return status not in (PENDING, PENDING_WITH_WARNINGS)
