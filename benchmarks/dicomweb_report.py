"""The DICOMweb benchmark's table: one row per figure, a column per target, and pacs's
figure over Orthanc's where both ran."""

from collections.abc import Callable, Iterator
from typing import Any

Row = tuple[str, str, Callable[[dict[str, Any]], float]]  # label, unit, how to read it


def _rows(report: dict[str, Any]) -> Iterator[Row]:
    scale = report["scale"]
    for count in (scale["small"], scale["large"]):
        yield (
            f"series metadata, {count} CT instances",
            "p95 ms",
            lambda t, c=count: t["metadata"][str(c)]["p95_ms"],
        )
    for kind in ("native", "jpeg2000"):
        yield f"one frame, {kind}", "p95 ms", lambda t, k=kind: t["frame"][k]["p95_ms"]
    mb = report["large_series_mb"]
    yield f"WADO-RS series of {mb:.0f} MB", "MB/s", lambda t: t["retrieve"]["mb_per_s"]
    yield f"WADO-RS series of {mb:.0f} MB", "peak RSS MB", lambda t: t["retrieve"]["peak_rss_mb"]
    yield f"STOW-RS, {scale['stow']} CT instances", "inst/s", lambda t: t["stow"]["instances_per_s"]
    yield "C-STORE ingest alone", "inst/s", lambda t: t["ingest"]["alone_per_s"]
    yield "C-STORE ingest while viewers load", "inst/s", lambda t: t["ingest"]["viewed_per_s"]
    yield "ingest while viewing / alone", "ratio", lambda t: t["ingest"]["ratio"]
    yield (
        "viewer frames during that ingest",
        "frames/s",
        lambda t: t["ingest"]["viewer_frames_per_s"],
    )
    for size in scale["populations"]:
        first = next(iter(report["targets"].values()), {})
        for label in first.get("qido", {}).get(str(size), {}):
            yield (
                f"QIDO {label}, {size:,} instances",
                "p95 ms",
                lambda t, s=size, q=label: t["qido"][str(s)][q]["p95_ms"],
            )


def _cell(read: Callable[[dict[str, Any]], float], figures: dict[str, Any]) -> str:
    try:
        return f"{read(figures):.2f}" if read(figures) < 10 else f"{read(figures):.0f}"
    except (KeyError, TypeError):
        return "-"


def markdown(report: dict[str, Any], command: str) -> str:
    targets = list(report["targets"])
    both = {"pacs", "orthanc"} <= set(targets)
    header = ["figure", "unit", *targets, *(["pacs / orthanc"] if both else [])]
    lines = [
        f"Machine: {report['cores']} cores (shared); command: `{command}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for label, unit, read in _rows(report):
        cells = [_cell(read, report["targets"][name]) for name in targets]
        if both:
            try:
                pacs, orthanc = read(report["targets"]["pacs"]), read(report["targets"]["orthanc"])
                cells.append(f"{pacs / orthanc:.2f}")
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        lines.append("| " + " | ".join([label, unit, *cells]) + " |")
    for name, reason in report["skipped"].items():
        lines.append(f"\nSkipped {name}: {reason}")
    qido = {
        name: {
            size: {q: f["matches"] for q, f in cases.items()} for size, cases in t["qido"].items()
        }
        for name, t in report["targets"].items()
    }
    lines.append(f"\nQIDO matches returned: {qido}")
    return "\n".join(lines) + "\n"
