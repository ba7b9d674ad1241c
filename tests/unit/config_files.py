"""Loading a test's pacs.toml text the way `pacs` does, for the tests of the config tables."""

from pathlib import Path

import pytest

from pacs.config import Settings, load_settings
from pacs.errors import ConfigError


def load(tmp_path: Path, text: str) -> Settings:
    """Write `text` as `tmp_path/pacs.toml` and load it, with no environment overrides."""
    path = tmp_path / "pacs.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def refusal(tmp_path: Path, text: str) -> str:
    """The ConfigError message loading `text` must raise, without its file-name prefix."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value).removeprefix(f"{tmp_path / 'pacs.toml'}: ")
