"""pacs: a DICOM archive served on one asyncio event loop."""

__version__ = "0.1.0"
