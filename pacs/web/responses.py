"""Responses in DICOMweb's media types: DICOM JSON (gzip when the client accepts it)."""

from typing import Any

from aiohttp import web

from pacs.dicom import json_model

DICOM_JSON = "application/dicom+json"


def dicom_json(
    body: list[dict[str, Any]] | dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A DICOM JSON response (PS3.18 F.2), compressed when Accept-Encoding allows it."""
    response = web.Response(
        body=json_model.dumps(body).encode(),
        status=status,
        content_type=DICOM_JSON,
        charset="utf-8",
        headers=headers,
    )
    response.enable_compression()
    return response
