"""WADO-RS's use cases in one object for the web edge: instances, metadata, frames, bulk data."""

from pacs.archive.retrieve import RetrieveService
from pacs.archive.wado_frames import FrameService
from pacs.archive.wado_metadata import MetadataService
from pacs.archive.wado_retrieve import InstanceStreams
from pacs.index.wado import WadoCatalogue
from pacs.store.protocol import BlobStore


class WadoService:
    """What WADO-RS asks of the archive, on the index's WADO reads, the store and retrieve."""

    def __init__(
        self, catalogue: WadoCatalogue, store: BlobStore, retrieve: RetrieveService
    ) -> None:
        self.instances = InstanceStreams(retrieve, store)
        self.metadata = MetadataService(catalogue)
        self.frames = FrameService(catalogue, store)
