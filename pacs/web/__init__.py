"""DICOMweb (PS3.18) over HTTP: QIDO-RS, STOW-RS and WADO-RS on the archive's event loop.

The same layer as `pacs.net`: it serves the archive's use cases (`pacs.archive`) in HTTP's
words and never touches the index, the store or SQL. `application.create_app` builds the
aiohttp application; each endpoint module adds its routes with `add_routes(app)` and finds
the services it needs under the typed keys of `keys`.
"""
