# pacs: the DICOM archive server. Build: `docker build -t pacs .`; run with
# docker-compose.yml (pacs + PostgreSQL), or alone with SQLite in the volume:
#   docker run -p 11112:11112 -v pacs-data:/data pacs
# python-gdcm, numpy, asyncpg, orjson and pylibjpeg ship manylinux wheels, so the slim
# image needs no compiler; DCMTK is not needed either.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The runtime user: fixed uid/gid 10001 so volume and bind-mount ownership is predictable.
RUN groupadd --system --gid 10001 pacs \
    && useradd --system --uid 10001 --gid pacs --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin pacs

# Dependencies first, read from pyproject.toml, so editing the source does not
# reinstall them: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml /app/pyproject.toml
RUN python -c "import tomllib; \
        project = tomllib.load(open('/app/pyproject.toml', 'rb'))['project']; \
        print('\n'.join(project['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# pacs itself, a regular (non-editable) install of the copied source tree, as pip
# installs any Python package: the Alembic migrations ship inside the package as
# package data. pip compiles the modules as it installs them (the pacs user cannot
# write __pycache__ in site-packages).
COPY . /app
RUN pip install --no-deps /app \
    && pip check

# A default configuration, so the image runs on its own; docker-compose.yml
# mounts ./config/pacs.toml over it (read-only).
COPY config/pacs.toml /etc/pacs/pacs.toml

# Everything pacs writes lives in /data, owned by the pacs user (a new named
# volume copies this ownership). The example config's relative paths are taken
# from the working directory, so with WORKDIR / its storage root "data/store"
# is /data/store and the default SQLite index "data/index.sqlite" is
# /data/index.sqlite: both in the volume.
RUN mkdir -p /data \
    && chown pacs:pacs /data
VOLUME /data
WORKDIR /

USER 10001:10001

# DICOM associations (the [server] port of the config).
EXPOSE 11112

# Healthy when pacs answers a C-ECHO (Verification, 1.2.840.10008.1.1) on
# loopback, at the port and AE title of the mounted config; any failure exits 1.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD python -c "import sys; from pathlib import Path; \
        from pacs.config import load_settings; from pynetdicom import AE; \
        server = load_settings(Path('/etc/pacs/pacs.toml')).server; \
        ae = AE(ae_title='HEALTHCHECK'); \
        ae.add_requested_context('1.2.840.10008.1.1'); \
        assoc = ae.associate('127.0.0.1', server.port, ae_title=server.ae_title); \
        status = assoc.send_c_echo().get('Status') if assoc.is_established else None; \
        assoc.release() if assoc.is_established else None; \
        sys.exit(status != 0)"

# Exec form: pacs is PID 1 and gets SIGTERM from `docker stop` directly; it then
# stops cleanly, giving running associations 10 s (compose allows 30 s in all).
CMD ["pacs", "serve", "--config", "/etc/pacs/pacs.toml"]
