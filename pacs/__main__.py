"""`python -m pacs`: the same command line as the `pacs` script."""

from pacs.cli import main

raise SystemExit(main())
