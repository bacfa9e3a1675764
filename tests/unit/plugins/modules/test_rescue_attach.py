"""rescue_attach's LUKS options, in check mode on a real LUKS2 image (nothing is attached, and this
machine has no device-mapper): the passphrase appears nowhere in what the module returns."""

from __future__ import annotations

import json
import shutil

import pytest
from ansible_collections.lifeline.rescue.plugins.modules import rescue_attach

from support.modules import run_module
from support.runners import output

PASSPHRASE = "a passphrase to keep 7f3c"


@pytest.fixture
def luks_image(tmp_path):
    cryptsetup = shutil.which("cryptsetup", path="/usr/sbin:/sbin:/usr/bin")
    if not cryptsetup:
        pytest.fail("cryptsetup is missing: run `make apt` (it installs cryptsetup-bin)")
    image = tmp_path / "vault.raw"
    with open(image, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    key = tmp_path / "key"
    key.write_text(PASSPHRASE)
    output(
        cryptsetup, "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
        "--pbkdf-force-iterations", "1000", "--key-file", key, image,
    )  # fmt: skip
    return image


def test_check_mode_with_a_passphrase_keeps_it_out_of_the_result(luks_image, tmp_path, capsys):
    rc, result = run_module(
        rescue_attach,
        capsys,
        target_image=str(luks_image),
        luks_passphrase=PASSPHRASE,
        mount_point=str(tmp_path / "mnt"),
        _ansible_check_mode=True,
    )

    assert rc == 0, result
    assert [(v["name"], v["fstype"]) for v in result["volumes"]] == [("whole disk", "crypto_LUKS")]
    assert result["steps"] == [] and not (tmp_path / "mnt").exists()
    assert PASSPHRASE not in json.dumps(result)


def test_a_key_file_and_a_passphrase_are_refused_together(luks_image, tmp_path, capsys):
    rc, result = run_module(
        rescue_attach,
        capsys,
        target_image=str(luks_image),
        luks_key_file=str(tmp_path / "key"),
        luks_passphrase=PASSPHRASE,
        mount_point=str(tmp_path / "mnt"),
    )

    assert rc == 1
    assert "mutually exclusive: luks_key_file|luks_passphrase" in result["msg"]
    assert PASSPHRASE not in json.dumps(result)
