"""The JSON log format: base keys, a record's fields, tracebacks."""

import json
import logging
import sys

from pacs.log_format import JsonFormatter, log_handler


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.getLogger("pacs.test").makeRecord(
        "pacs.test", logging.WARNING, __file__, 1, msg, args, None
    )


def test_a_line_has_the_message_its_fields_and_keeps_its_own_keys() -> None:
    record = _record("%s from %s", "C-ECHO", "X@h:1")
    record.fields = {"operation": "C-ECHO", "level": "forged", "duration_ms": 1.5}

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "C-ECHO from X@h:1"
    assert (line["level"], line["logger"]) == ("WARNING", "pacs.test")
    assert (line["operation"], line["duration_ms"]) == ("C-ECHO", 1.5)


def test_a_traceback_goes_into_its_own_key_on_the_same_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("pacs.test").makeRecord(
            "pacs.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    text = JsonFormatter().format(record)

    assert "\n" not in text
    assert "ValueError: broken" in json.loads(text)["exception"]


def test_a_workers_lines_say_which_worker_wrote_them() -> None:
    record = _record("pacs listening")

    text = log_handler("text", worker=2).format(record)
    line = json.loads(log_handler("json", worker=2).format(record))

    assert text.endswith(" WARNING worker-2 pacs.test: pacs listening")
    assert (line["worker"], line["message"]) == (2, "pacs listening")
