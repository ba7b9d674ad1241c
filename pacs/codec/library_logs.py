"""Decoder libraries' own error records, moved to DEBUG while pacs decodes and reports the outcome.

pydicom logs every decoding plugin that fails, with its traceback, at ERROR,
even when the next plugin succeeds. pacs turns a failed decode into a
ConversionFailed that names each plugin's reason, and the retrieve that asked
for it reports the failed sub-operation, so those records would only be noise
an admin cannot act on. They stay available at DEBUG on this module's logger.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

DECODER_LOGGERS = ("pydicom.pixels.decoders.base",)

_decoding = threading.local()


class _ErrorsToDebug(logging.Filter):
    """Re-log ERROR and above from the decoding thread at DEBUG here; leave other threads alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not getattr(_decoding, "active", False):
            return True
        log.debug(
            "%s while decoding: %s", record.name, record.getMessage(), exc_info=record.exc_info
        )
        return False


_FILTER = _ErrorsToDebug()


@contextmanager
def library_errors_at_debug() -> Iterator[None]:
    """Within the block, decoder libraries' ERROR records from this thread go to DEBUG."""
    for name in DECODER_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)  # a no-op once added
    outer = getattr(_decoding, "active", False)
    _decoding.active = True
    try:
        yield
    finally:
        _decoding.active = outer
