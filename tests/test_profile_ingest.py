"""The ingest profiler's readings of py-spy's raw stacks and strace's summary table."""

from benchmarks.profile_ingest import inclusive_samples, strace_counts

RAW = "\n".join(
    [
        "_run (asyncio/events.py:80);ingest (pacs/archive/ingest.py:178);"
        "read_header (pacs/dicom/header.py:33) 6",
        "_run (asyncio/events.py:80);ingest (pacs/archive/ingest.py:190) 3",
        "_worker (concurrent/futures/thread.py:83);_fsync (pacs/store/blobstore.py:40);"
        "_fsync (pacs/store/blobstore.py:41) 1",
        "not a stack line",
    ]
)

STRACE = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.10    0.120000          60      2000           fsync
 30.00    0.090000          15      6000       120 futex
  2.00    0.005000           5      1000           rename
------ ----------- ----------- --------- --------- ----------------
100.00    0.215000                  9000       120 total
"""


def test_a_function_counts_once_per_stack_across_its_lines() -> None:
    total, counts = inclusive_samples(RAW.splitlines())

    assert total == 10
    assert counts["ingest (pacs/archive/ingest.py)"] == 9
    assert counts["read_header (pacs/dicom/header.py)"] == 6
    assert counts["_fsync (pacs/store/blobstore.py)"] == 1  # recursion counted once
    assert counts["_run (asyncio/events.py)"] == 9


def test_strace_calls_are_read_with_or_without_errors_and_without_the_total() -> None:
    assert strace_counts(STRACE) == {"fsync": 2000, "futex": 6000, "rename": 1000}
