"""The log's two formats: text lines, or one JSON object per line ([logging] format).

A JSON line carries what the text line says (`message`) and, where the code that logged
it gave them as the record's `fields` (the operation and association lines of
net/operation_log.py), the same facts as separate keys, so a log collector need not
parse the words. Nothing is added that the text line does not carry: patient data stays
at DEBUG in both formats.
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Keys every line has; a record's `fields` may not replace them.
_BASE_KEYS = ("time", "level", "logger", "message", "exception")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, fields."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._worker is not None:
            line["worker"] = self._worker
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        # default=str: a field that is not plain JSON (a UID object, a Path) is written as text.
        return orjson.dumps(line, default=str).decode()


def log_handler(format_name: str, worker: int | None = None) -> logging.Handler:
    """A handler writing to stderr in `format_name` ("text" or "json").

    A worker's lines say which worker wrote them (pacs.supervisor): "worker-N" before the
    logger's name, or a "worker" key.
    """
    handler = logging.StreamHandler(sys.stderr)
    if format_name == "json":
        handler.setFormatter(JsonFormatter(worker))
        return handler
    tag = "" if worker is None else f"worker-{worker} "
    handler.setFormatter(logging.Formatter(TEXT_FORMAT.replace("%(name)s", tag + "%(name)s")))
    return handler
