"""Responses in DICOMweb's media types: DICOM JSON (gzip when the client accepts it)."""

from typing import Any

from aiohttp import hdrs, web

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
        # DICOM JSON is UTF-8 by definition (PS3.18 F.2); clients compare the bare type.
        content_type=DICOM_JSON,
        headers=headers,
    )
    response.enable_compression()
    return response


_JSON_RANGES = frozenset({DICOM_JSON, "application/json", "application/*", "*/*"})


def accepts_json(request: web.BaseRequest) -> bool:
    """Whether the request's Accept header (none: anything) allows DICOM JSON."""
    accept = request.headers.get(hdrs.ACCEPT)
    if not accept:
        return True
    ranges = (item.split(";", 1)[0].strip().lower() for item in accept.split(","))
    return any(media in _JSON_RANGES for media in ranges)
