"""The DICOMweb benchmark's table: one row per figure, a column per target, and pacs's
figure over Orthanc's where both ran."""

from collections.abc import Callable, Iterator
from typing import Any

Row = tuple[str, str, Callable[[dict[str, Any]], float]]  # label, unit, how to read it


def _at(*keys: str) -> Callable[[dict[str, Any]], float]:
    """A reader of the figure at `keys` in one target's results."""

    def read(figures: dict[str, Any]) -> float:
        value: Any = figures
        for key in keys:
            value = value[key]
        return float(value)

    return read


def _rows(report: dict[str, Any]) -> Iterator[Row]:
    scale = report["scale"]
    for count in (scale["small"], scale["large"]):
        yield (
            f"series metadata, {count} CT instances",
            "p95 ms",
            _at("metadata", str(count), "p95_ms"),
        )
    for kind in ("native", "jpeg2000"):
        yield f"one frame, {kind}", "p95 ms", _at("frame", kind, "p95_ms")
    series = f"WADO-RS series of {report['large_series_mb']:.0f} MB"
    yield series, "MB/s", _at("retrieve", "mb_per_s")
    yield series, "peak RSS MB", _at("retrieve", "peak_rss_mb")
    yield f"STOW-RS, {scale['stow']} CT instances", "inst/s", _at("stow", "instances_per_s")
    yield "C-STORE ingest alone", "inst/s", _at("ingest", "alone_per_s")
    yield "C-STORE ingest while viewers load", "inst/s", _at("ingest", "viewed_per_s")
    yield "ingest while viewing / alone", "ratio", _at("ingest", "ratio")
    yield "viewer frames during that ingest", "frames/s", _at("ingest", "viewer_frames_per_s")
    first: dict[str, Any] = next(iter(report["targets"].values()), {})
    for size in scale["populations"]:
        for label in first.get("qido", {}).get(str(size), {}):
            yield (
                f"QIDO {label}, {size:,} instances",
                "p95 ms",
                _at("qido", str(size), label, "p95_ms"),
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
    for name, figures in report["targets"].items():
        for answer in figures["wrong_answers"]:
            lines.append(f"\nWRONG ANSWER from {name}: {answer}")
    return "\n".join(lines) + "\n"
