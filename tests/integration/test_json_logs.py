"""`[logging] format = "json"`: `pacs serve` writes one JSON object a line, with the facts
of each operation line as separate keys and no patient names at INFO."""

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from tests.conftest import make_instance
from tests.integration import scu
from tests.integration.conftest import PacsAddress, write_config
from tests.integration.serve_process import ServeProcess, start_serve

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
NAMES = ("Doe^Jane", "Doe^John")  # the instances' PatientNames: never at INFO or above


async def _serve_and_work(tmp_path: Path, log_format: str) -> tuple[ServeProcess, Dataset]:
    """Run `pacs serve`; store an instance, then another with its UID (refused), find its
    study."""
    config = write_config(
        tmp_path,
        storage={"min_free_bytes": 0, "duplicate_policy": "reject"},
        logging={"level": "INFO", "format": log_format},
    )
    served = await start_serve(config)
    await served.wait_listening()
    address = PacsAddress(served.host, served.port)
    instance = make_instance()
    altered = make_instance(SOPInstanceUID=instance.SOPInstanceUID, PatientName=NAMES[1])
    assert await asyncio.to_thread(scu.store, address, [instance, altered]) == [0x0000, 0x0111]
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = instance.StudyInstanceUID
    final, matches = await asyncio.to_thread(scu.find, address, STUDY_ROOT_FIND, query)
    assert (final, len(matches)) == (0, 1)
    assert await served.stop(signal.SIGTERM) == 0
    return served, instance


def _operation(lines: list[dict[str, Any]], operation: str, status: str) -> dict[str, Any]:
    [line] = [x for x in lines if x.get("operation") == operation and x["status"] == status]
    return line


async def test_json_lines_carry_the_operation_fields_and_no_patient_name(tmp_path: Path) -> None:
    served, instance = await _serve_and_work(tmp_path, "json")

    lines = [json.loads(line) for line in served.log]  # every line is one JSON object
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert not any(name in "\n".join(served.log) for name in NAMES)
    uid = str(instance.SOPInstanceUID)

    stored = _operation(lines, "C-STORE", "0x0000")
    assert stored["level"] == "INFO"
    assert stored["logger"] == "pacs.net.operation_log"
    assert stored["calling_ae"] == "MODALITY"
    assert stored["peer"].startswith("MODALITY@127.0.0.1:")
    assert stored["sop_instance_uid"] == uid
    assert stored["outcome"] == "status"
    assert isinstance(stored["duration_ms"], float) and stored["duration_ms"] > 0
    assert re.fullmatch(
        rf"C-STORE from {stored['peer']}: SOP Instance {uid}; status 0x0000 in [\d.]+ ms",
        stored["message"],
    )

    refused = _operation(lines, "C-STORE", "0x0111")
    assert refused["level"] == "WARNING"
    assert refused["outcome"] == "refused"
    assert refused["sop_instance_uid"] == uid
    assert "duplicate policy rejects it" in refused["comment"]

    found = _operation(lines, "C-FIND", "0x0000")
    assert found["calling_ae"] == "WORKSTATION"
    assert str(instance.StudyInstanceUID) not in found.get("sop_instance_uid", "")
    assert found["detail"] in found["message"]

    [ended] = [x for x in lines if "ended" in x and x["association"].startswith(
        "association from MODALITY@")]  # fmt: skip
    assert (ended["ended"], ended["operations"]) == ("released by the peer", 2)
    assert ended["seconds"] >= 0


async def test_text_lines_say_the_same_as_the_json_messages(tmp_path: Path) -> None:
    (tmp_path / "json").mkdir()
    (tmp_path / "text").mkdir()
    as_json, _ = await _serve_and_work(tmp_path / "json", "json")
    as_text, _ = await _serve_and_work(tmp_path / "text", "text")

    def shape(message: str) -> str:  # what differs between two runs: UIDs, hashes, times
        return re.sub(r"[0-9a-f]{64}|[\d.]+", "N", message)

    messages = [json.loads(line)["message"] for line in as_json.log]
    texts = [line.split(": ", 1)[1] for line in as_text.log]
    assert not any(line.startswith("{") for line in as_text.log)
    assert not any(name in "\n".join(as_text.log) for name in NAMES)
    operations = [m for m in map(shape, messages) if m.startswith(("C-STORE", "C-FIND"))]
    assert operations
    assert operations == [t for t in map(shape, texts) if t.startswith(("C-STORE", "C-FIND"))]
