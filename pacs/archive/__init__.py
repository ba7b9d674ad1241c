"""Use cases of the archive: ingest, query, retrieve, commitment; protocol-free."""
