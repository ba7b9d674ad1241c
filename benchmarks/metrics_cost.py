"""CPU time the metrics add to each DIMSE operation, and what a scrape costs.

Times `finish_operation` (the edge every final response goes through) on a real
C-STORE command set, with and without the calling AE's tally, the log line left out
(its logger at WARNING) so the difference is the metrics alone; then the time to render
the registry for a scrape. Usage: python -m benchmarks.metrics_cost [--calls N]
"""

import argparse
import logging
import time

from prometheus_client import generate_latest

from pacs.metrics.collector import build_registry
from pacs.metrics.recorder import ArchiveMetrics
from pacs.net.command_set import ReceivedCommand, encode_command
from pacs.net.dimse import Command, DimseMessage
from pacs.net.operation_log import finish_operation, operation_name

TIMED = (Command.C_STORE_RQ, Command.C_FIND_RQ, Command.C_MOVE_RQ, Command.C_GET_RQ)


def _store_request() -> DimseMessage:
    command = encode_command(
        {
            "CommandField": Command.C_STORE_RQ,
            "MessageID": 1,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "AffectedSOPInstanceUID": "1.2.3.4.5.6.7.8.9",
            "Priority": 0,
            "CommandDataSetType": 0,
        }
    )
    return DimseMessage(
        ReceivedCommand(command), 1, "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1", True
    )


def _cpu_per_call(calls: int, metrics: ArchiveMetrics | None) -> float:
    request = _store_request()
    tally = metrics.peer("MODALITY") if metrics is not None else None
    start = time.process_time()
    for _ in range(calls):
        finish_operation("MODALITY@127.0.0.1:1", request, 0, None, "", tally=tally, stored=512)
    return (time.process_time() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    logging.getLogger("pacs.net.operation_log").setLevel(logging.WARNING)
    metrics = ArchiveMetrics(TIMED, operation_name)
    # Interleaved runs: the machine is shared, so compare within one run.
    without, with_metrics = [], []
    for _ in range(5):
        without.append(_cpu_per_call(args.calls, None))
        with_metrics.append(_cpu_per_call(args.calls, metrics))
    base, added = min(without), min(with_metrics)
    print(f"finish_operation without metrics: {base * 1e9:.0f} ns CPU per operation")
    print(f"finish_operation with metrics:    {added * 1e9:.0f} ns CPU per operation")
    print(f"metrics add {(added - base) * 1e9:.0f} ns CPU per operation")
    for number in range(200):  # a site's worth of calling AEs, each with a few statuses
        tally = metrics.peer(f"AE{number}")
        for code in (0x0000, 0xA700, 0xC000):
            tally.operation_done(Command.C_STORE_RQ, code, 0.002, 1024)
    registry = build_registry(metrics)
    start = time.process_time()
    body = generate_latest(registry)
    print(
        f"a scrape of 600 request series: {len(body)} bytes, "
        f"{(time.process_time() - start) * 1e3:.1f} ms CPU"
    )


if __name__ == "__main__":
    main()
