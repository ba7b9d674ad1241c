"""Domain exceptions: what went wrong, in the archive's own words.

The core raises these; `pacs.net.status` is the one place that turns them into
DIMSE statuses. No DICOM status codes here.

    PacsError
    ├── ConfigError            the configuration file is invalid (names the key)
    ├── StartupError           a port, directory or database the configuration names is unusable
    ├── SchemaError            the database schema is not one this code can use
    ├── InvalidInstance        a received data set cannot be indexed (says why)
    │   └── DataSetMismatch    the data set is not the SOP Class / Instance announced
    ├── InvalidIdentifier      a query identifier breaks the matching or hierarchy rules
    ├── InstanceConflict       a duplicate refused by the duplicate policy
    ├── ResourceNotFound       what a request names (study, series, instance, frame) is not stored
    ├── TransferUnavailable    a stored instance cannot be sent in a syntax the receiver accepted
    │   └── DeidentificationRefused  its identity may be in its pixels, out of a profile's reach
    ├── StoreUnavailable       the store or the index cannot take the write now
    │   └── StoreFull          free space is below the configured minimum
    └── ProtocolError          a peer broke the DICOM upper-layer protocol
"""


class PacsError(Exception):
    """Base of every error the archive raises on purpose."""


class ConfigError(PacsError):
    """The configuration is invalid; the message names the key and the reason."""


class StartupError(PacsError):
    """pacs cannot start or run a command: a port, directory or database that the
    configuration names cannot be used. The message names the key to fix and the cause."""

    def __init__(self, key: str, cause: str) -> None:
        super().__init__(f"{key}: {cause}")


class SchemaError(PacsError):
    """The index database has a schema this version cannot use."""


class InvalidInstance(PacsError):
    """A received instance cannot be understood or indexed."""


class DataSetMismatch(InvalidInstance):
    """The data set's SOP Class or Instance UID is not the one its request announced."""


class InvalidIdentifier(PacsError):
    """A C-FIND/C-MOVE/C-GET identifier the model does not allow; the message says why."""


class InstanceConflict(PacsError):
    """A re-sent instance was refused by the duplicate policy."""


class ResourceNotFound(PacsError):
    """A study, series, instance, frame or bulk value that a request names is not stored."""


class TransferUnavailable(PacsError):
    """An instance cannot be read or converted for a receiver (the message says why)."""


class DeidentificationRefused(TransferUnavailable):
    """An instance cannot be de-identified by a header profile (the message says why)."""


class StoreUnavailable(PacsError):
    """The store or the index cannot accept a write right now."""


class StoreFull(StoreUnavailable):
    """Free space in the store is below the configured minimum."""


class ProtocolError(PacsError):
    """A peer sent something the DICOM upper layer does not allow."""
