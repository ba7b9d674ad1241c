"""`python -m benchmarks`: every benchmark in turn, and one summary of them (benchmarks.suite)."""

from benchmarks.suite import main

raise SystemExit(main())
