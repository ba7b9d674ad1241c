"""probe_root: the start-up check that blobs can be written under the store's root."""

from pathlib import Path

import pytest

from pacs.errors import StoreUnavailable
from pacs.store.blobstore import STAGING_DIR
from pacs.store.probe import probe_root


def test_a_missing_root_is_created_and_the_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "data" / "store"

    probe_root(root)

    assert [path.relative_to(root) for path in root.rglob("*")] == [Path(STAGING_DIR)]


def test_a_root_under_a_regular_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")

    with pytest.raises(StoreUnavailable, match=f"{tmp_path / 'afile'} is not a directory"):
        probe_root(tmp_path / "afile" / "store")


def test_a_root_that_is_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("")

    with pytest.raises(StoreUnavailable, match="is not a directory"):
        probe_root(tmp_path / "store")
