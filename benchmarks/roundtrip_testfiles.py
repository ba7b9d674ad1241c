"""How many of pydicom's test images round-trip store -> retrieve to an uncompressed-only receiver.

Each image file bundled with pydicom (File Meta Information and Pixel Data) is
sent in its own syntax into a real pacs (pynetdicom sends a file's data set
bytes as they are), then fetched back with C-GET by a receiver that accepts
only Explicit and Implicit VR Little Endian, as DCMTK's default getscu and
storescp do. A file round-trips when the C-GET ends in Success with the
instance received. Files sharing a SOP Instance or Study Instance UID
(pydicom's variants of one image) go to separate pacs instances, so each is
retrieved as it was stored.

    python -m benchmarks.roundtrip_testfiles [--postgres] [--verbose]
"""

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom.data
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet  # type: ignore[attr-defined]

from benchmarks.servers import Server, shutdown
from benchmarks.targets import start_pacs, start_pacs_postgres

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
SUCCESS = 0x0000


@dataclass(frozen=True, slots=True)
class SampleImage:
    path: Path
    transfer_syntax: str
    sop_class: str
    study: str
    series: str
    instance: str


@dataclass(frozen=True, slots=True)
class Outcome:
    image: SampleImage
    stored: bool
    retrieved: bool
    detail: str


def test_images() -> list[SampleImage]:
    """pydicom's bundled Part 10 files that hold an image, by name."""
    folder = Path(pydicom.data.__file__).parent / "test_files"
    images = []
    for path in sorted(folder.glob("*.dcm")):
        try:
            ds = dcmread(path)
        except (InvalidDicomError, OSError, ValueError):
            continue
        syntax = ds.file_meta.get("TransferSyntaxUID")
        keys = ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        if syntax is None or "PixelData" not in ds or not all(k in ds for k in keys):
            continue
        values = [str(ds[k].value) for k in keys]
        images.append(SampleImage(path, str(syntax), *values))
    return images


def generations(images: Sequence[SampleImage]) -> list[list[SampleImage]]:
    """Images split so that no two in one group share a SOP Instance or Study Instance UID."""
    groups: list[list[SampleImage]] = []
    for image in images:
        for group in groups:
            if all(image.instance != o.instance and image.study != o.study for o in group):
                group.append(image)
                break
        else:
            groups.append([image])
    return groups


def store(server: Server, image: SampleImage) -> str | None:
    """Send the file's data set bytes as they are, in its own syntax; None on success, else why."""
    ae = AE(ae_title="ROUNDTRIP")
    ae.add_requested_context(image.sop_class, [image.transfer_syntax])
    assoc = ae.associate("127.0.0.1", server.port, ae_title=server.ae_title)
    if not assoc.is_established:
        return "association not established"
    try:
        status = assoc.send_c_store(image.path)
    except (ValueError, AttributeError) as exc:  # pynetdicom's words for a file it cannot send
        return f"not sent: {exc}"
    finally:
        assoc.release()
    if not status or int(status.Status) != SUCCESS:
        return "no response" if not status else f"C-STORE answered 0x{int(status.Status):04X}"
    return None


def retrieve(server: Server, image: SampleImage) -> str | None:
    """C-GET the instance accepting only uncompressed syntaxes; None on success, else why not."""
    ae = AE(ae_title="ROUNDTRIP")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(image.sop_class, UNCOMPRESSED)
    received: list[str] = []

    def on_store(event: Event) -> int:
        received.append(str(event.context.transfer_syntax))
        return SUCCESS

    assoc = ae.associate(
        "127.0.0.1",
        server.port,
        ae_title=server.ae_title,
        ext_neg=[build_role(image.sop_class, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    if not assoc.is_established:
        return "association not established"
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = image.study
    identifier.SeriesInstanceUID = image.series
    identifier.SOPInstanceUID = image.instance
    final = None
    for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
        if status:
            final = int(status.Status)
    assoc.release()
    if final != SUCCESS or len(received) != 1:
        status_text = "no response" if final is None else f"0x{final:04X}"
        return f"C-GET ended {status_text}, {len(received)} instance(s) received"
    return None


def round_trip(server: Server, image: SampleImage) -> Outcome:
    why = store(server, image)
    if why is not None:
        return Outcome(image, stored=False, retrieved=False, detail=f"store: {why}")
    why = retrieve(server, image)
    return Outcome(image, stored=True, retrieved=why is None, detail=why or "")


def run(postgres: bool) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for group in generations(test_images()):
        with tempfile.TemporaryDirectory(prefix="roundtrip-") as workdir:
            server = (start_pacs_postgres if postgres else start_pacs)(Path(workdir))
            try:
                outcomes.extend(round_trip(server, image) for image in group)
            finally:
                shutdown(server)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="pacs on PostgreSQL")
    parser.add_argument("--verbose", action="store_true", help="one line per file")
    args = parser.parse_args(argv)
    outcomes = run(args.postgres)
    for outcome in outcomes:
        if args.verbose or not outcome.retrieved:
            mark = "ok  " if outcome.retrieved else "FAIL"
            name = outcome.image.path.name
            print(f"{mark} {name} ({outcome.image.transfer_syntax}) {outcome.detail}")
    stored = sum(o.stored for o in outcomes)
    retrieved = sum(o.retrieved for o in outcomes)
    print(
        f"{retrieved} of {len(outcomes)} pydicom test images round-trip to an uncompressed-only "
        f"receiver ({stored} stored)"
    )
    return 0 if retrieved == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
