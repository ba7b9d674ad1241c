"""[deidentify.NAME] profiles and the peers' `deidentify` key: parsed, checked, secrets hidden."""

from pathlib import Path

import pytest

from pacs.config import Settings, load_settings
from pacs.dicom.deidentify import Dates, Profile, SafePrivateTag
from pacs.errors import ConfigError

RESEARCH_PEER = '[[peers]]\nae_title = "RESEARCH"\nhost = "h"\nport = 1\ndeidentify = "{}"\n\n'
PROFILE = """
[deidentify.research]
dates = "shift"
retain_patient_characteristics = true
retain_device_identity = true
clean_descriptors = true
safe_private = ["0019,GEMS_ACQU_01,0c"]
secret = "correct horse battery staple"
"""


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "pacs.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return str(caught.value).replace(str(tmp_path / "pacs.toml"), "pacs.toml")


def test_a_profile_table_sets_its_options_and_a_peer_names_it(tmp_path: Path) -> None:
    settings = _load(tmp_path, RESEARCH_PEER.format("research") + PROFILE)

    assert settings.peers[0].deidentify == "research"
    research = settings.deidentify["research"]
    assert research.profile == Profile(
        name="research",
        dates=Dates.SHIFT,
        retain_patient_characteristics=True,
        retain_device_identity=True,
        clean_descriptors=True,
        safe_private=frozenset({SafePrivateTag(0x0019, "GEMS_ACQU_01", 0x0C)}),
    )
    assert research.secret == "correct horse battery staple"


def test_the_secret_is_never_in_the_printed_settings(tmp_path: Path) -> None:
    settings = _load(tmp_path, RESEARCH_PEER.format("research") + PROFILE)

    assert "correct horse" not in repr(settings)
    assert "correct horse" not in str(settings)


def test_basic_is_built_in_and_needs_no_table(tmp_path: Path) -> None:
    settings = _load(tmp_path, RESEARCH_PEER.format("basic"))

    assert settings.deidentify["basic"].profile == Profile()


def test_a_profile_no_table_defines_is_one_line_naming_the_key(tmp_path: Path) -> None:
    message = _refused(tmp_path, RESEARCH_PEER.format("teaching") + PROFILE)

    assert message == (
        "pacs.toml: [[peers]][1] deidentify: no profile 'teaching' "
        "(defined: basic, research; add a [deidentify.teaching] table)"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('dates = "blur"', "[deidentify.x] dates: must be one of remove, shift, keep"),
        ("retain_uid = true", "unknown key [deidentify.x] retain_uid"),
        ('safe_private = ["0010,X,10"]', "is not an odd group"),
        ('secret = "a"\nsecret_file = "f"', "set secret or secret_file, not both"),
    ],
)
def test_bad_profile_keys_are_refused_with_the_key(
    tmp_path: Path, table: str, message: str
) -> None:
    assert message in _refused(tmp_path, f"[deidentify.x]\n{table}\n")


def test_a_table_named_basic_is_refused(tmp_path: Path) -> None:
    assert "'basic' is built in" in _refused(tmp_path, "[deidentify.basic]\ndates = 'keep'\n")
