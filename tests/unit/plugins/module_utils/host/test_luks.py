"""host.luks: cryptsetup's command lines, a passphrase only on stdin, the mapping names, and real
LUKS1/LUKS2 headers read and judged by the real cryptsetup (this machine has no device-mapper, so
nothing is opened here; the VM lane opens them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import luks

from support.runners import FakeRunner, output, tool_error
from support.runners import run as tool_run

PASSPHRASE = b"correct horse \xc3\xa9 battery"  # no newline: the bytes are the key, as typed


def cryptsetup() -> str:
    found = shutil.which("cryptsetup") or shutil.which("cryptsetup", path="/usr/sbin:/sbin")
    if not found:
        pytest.fail("cryptsetup is missing: run `make apt` (it installs cryptsetup-bin)")
    return found


def luks_file(path: Path, version: str, key: Path) -> Path:
    """A real LUKS header written by cryptsetup into a file (luksFormat needs no device-mapper)."""
    with open(path, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    pbkdf = ["--pbkdf", "pbkdf2"] if version == "2" else []
    output(
        cryptsetup(), "luksFormat", "-q", "--type", f"luks{version}", *pbkdf,
        "--pbkdf-force-iterations", "1000", "--key-file", key, path,
    )  # fmt: skip
    return path


@pytest.fixture
def key_file(tmp_path) -> Path:
    key = tmp_path / "vault.key"
    key.write_bytes(PASSPHRASE)
    return key


# ---- the key --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "argv", "stdin"),
    [
        ({"key_file": "/root/vdb.key"}, ["--key-file=/root/vdb.key"], None),
        ({"passphrase": PASSPHRASE}, ["--key-file=-"], PASSPHRASE),
    ],
    ids=["key file", "passphrase"],
)
def test_open_runs_cryptsetup_with_the_key(given, argv, stdin):
    run = FakeRunner()

    luks.open_volume(run, "/dev/vdb2", "lifeline-mnt-lifeline-1", luks.Key(**given), "partition 2")

    assert run.calls == [
        ["cryptsetup", "open", "--type", "luks", *argv, "/dev/vdb2", "lifeline-mnt-lifeline-1"]
    ]
    assert run.stdin == [stdin]


def test_the_passphrase_is_never_on_the_command_line_nor_in_repr():
    run = FakeRunner()
    key = luks.Key(passphrase=PASSPHRASE)

    luks.open_volume(run, "/dev/vdb2", "lifeline-x-1", key, "partition 2", readonly=True)

    assert "--readonly" in run.calls[0]
    assert not any(PASSPHRASE.decode() in arg for arg in run.calls[0])
    assert PASSPHRASE.decode() not in repr(key) and PASSPHRASE.decode() not in key.describe()


def test_a_key_file_open_works_with_a_one_argument_runner():
    """Runners that take argv alone (the tests', older callers') still serve every call but the
    passphrase's."""
    calls = []
    luks.open_volume(calls.append, "/dev/vdb2", "n", luks.Key(key_file="/k"), "partition 2")
    assert calls == [["cryptsetup", "open", "--type", "luks", "--key-file=/k", "/dev/vdb2", "n"]]


@pytest.mark.parametrize("given", [{}, {"key_file": "/k", "passphrase": b"p"}], ids=["none", "both"])
def test_a_key_is_one_of_the_two(given):
    with pytest.raises(luks.LuksError, match="a LUKS key file or a passphrase, one of the two"):
        luks.Key(**given)


def test_a_wrong_key_says_which_volume_it_does_not_open():
    argv = ["cryptsetup", "open"]
    run = FakeRunner({("cryptsetup", "open"): tool_error(argv, 2, "No key available with this passphrase.")})

    with pytest.raises(luks.LuksError) as raised:
        luks.open_volume(
            run, "/dev/vdb2", "n", luks.Key(key_file="/root/old.key"), "partition 2 (LUKS2 UUID=1e82)"
        )

    assert str(raised.value).startswith(
        "the key file /root/old.key does not open partition 2 (LUKS2 UUID=1e82): give the right "
        "target_luks_key_file or target_luks_passphrase"
    )


def test_another_failure_keeps_cryptsetups_words():
    argv = ["cryptsetup", "open"]
    run = FakeRunner({("cryptsetup", "open"): tool_error(argv, 5, "Device n already exists.")})

    with pytest.raises(luks.LuksError, match=r"partition 2 could not be unlocked: .*Device n already exists"):
        luks.open_volume(run, "/dev/vdb2", "n", luks.Key(key_file="/k"), "partition 2")


# ---- close ------------------------------------------------------------------------------------------


def test_close_closes_an_open_mapping():
    run = FakeRunner({("cryptsetup", "status"): "/dev/mapper/n is active.\n"})
    assert luks.close(run, "n") is True
    assert run.calls == [["cryptsetup", "status", "n"], ["cryptsetup", "close", "n"]]


def test_close_of_a_mapping_already_closed_does_nothing():
    argv = ["cryptsetup", "status", "n"]
    run = FakeRunner({("cryptsetup", "status"): tool_error(argv, 4, "/dev/mapper/n is inactive.")})
    assert luks.close(run, "n") is False
    assert run.calls == [argv]


def test_close_without_cryptsetup_says_so():
    """A missing tool is not an inactive mapping: the step stays to be undone."""
    run = FakeRunner({("cryptsetup",): luks.ToolMissing("cryptsetup is not installed on this rescuer")})
    with pytest.raises(luks.ToolMissing, match="not installed"):
        luks.close(run, "n")


def test_a_missing_cryptsetup_is_not_a_missing_header():
    run = FakeRunner({("cryptsetup",): luks.ToolMissing("cryptsetup is not installed on this rescuer")})
    with pytest.raises(luks.ToolMissing, match=r"^cryptsetup is not installed on this rescuer$"):
        luks.header(run, "/dev/vdb2")


# ---- mapping names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mount_point", "present", "taken", "expected"),
    [
        ("/mnt/lifeline", [], set(), "lifeline-mnt-lifeline-1"),
        ("/mnt/lifeline", ["lifeline-mnt-lifeline-1", "control"], set(), "lifeline-mnt-lifeline-2"),
        (
            "/mnt/lifeline",
            ["lifeline-mnt-lifeline-1"],
            {"lifeline-mnt-lifeline-2"},
            "lifeline-mnt-lifeline-3",
        ),
        ("/srv/vm 108/root", [], set(), "lifeline-srv-vm-108-root-1"),
        ("/", [], set(), "lifeline-root-1"),
        ("/mnt/" + "x" * 300, [], set(), "lifeline-mnt-" + "x" * 60 + "-1"),
    ],
    ids=["first", "one taken by another run", "one taken by this run", "spaces", "slash", "long"],
)
def test_mapping_name(tmp_path, mount_point, present, taken, expected):
    for name in present:
        (tmp_path / name).touch()
    assert luks.mapping_name(mount_point, taken, mapper_dir=str(tmp_path)) == expected


def test_mapping_name_without_a_mapper_directory(tmp_path):
    assert luks.mapping_name("/mnt/x", set(), mapper_dir=str(tmp_path / "none")) == "lifeline-mnt-x-1"


# ---- real headers, judged by cryptsetup and blkid ---------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_header_of_a_real_luks_volume(tmp_path, key_file, version):
    volume = luks_file(tmp_path / f"luks{version}.img", version, key_file)

    found = luks.header(tool_run, str(volume))

    blkid = output("blkid", "--probe", "--output", "export", volume)
    assert f"VERSION={version}\n" in blkid and f"UUID={found.uuid}\n" in blkid
    assert found.version == version


def test_header_of_something_else(tmp_path):
    plain = tmp_path / "plain.img"
    plain.write_bytes(b"\0" * 4096)
    cryptsetup()
    with pytest.raises(luks.LuksError, match="has no LUKS header cryptsetup can read"):
        luks.header(tool_run, str(plain))


@pytest.mark.parametrize(
    ("key", "verdict"),
    [
        pytest.param(lambda kf: luks.Key(passphrase=PASSPHRASE), 0, id="passphrase on stdin"),
        pytest.param(lambda kf: luks.Key(key_file=str(kf)), 0, id="key file"),
        pytest.param(lambda kf: luks.Key(passphrase=PASSPHRASE + b"\n"), 2, id="a newline more"),
        pytest.param(lambda kf: luks.Key(passphrase=b"wrong"), 2, id="wrong passphrase"),
    ],
)
def test_real_cryptsetup_takes_the_key_as_given(tmp_path, key_file, key, verdict):
    """The key's arguments and stdin, as open_volume passes them, checked by cryptsetup itself
    (--test-passphrase needs no device-mapper); exit 2 is what open_volume reads as a wrong key."""
    volume = luks_file(tmp_path / "luks2.img", "2", key_file)
    chosen = key(key_file)
    argv = [cryptsetup(), "open", "--test-passphrase", "--type", "luks", *chosen.argv(), str(volume)]

    try:
        tool_run(argv, stdin=chosen.passphrase or None)
        status = 0
    except luks.ToolError as exc:
        assert luks._WRONG_KEY in str(exc), exc
        status = 2

    assert status == verdict
