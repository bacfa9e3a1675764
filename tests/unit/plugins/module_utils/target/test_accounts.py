"""target.accounts: the target's own /etc/passwd and /etc/group, as data tables, hostile lines included."""

from __future__ import annotations

import os

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.target import accounts
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

PASSWD_CASES = [
    ("root:x:0:0:root:/root:/bin/bash\n", [Account("root", 0, 0, "/root", "/bin/bash", True)]),
    # cron's getpwnam finds a user whose ids are not numbers: known, ids unknown
    ("odd:x:abc:1\n", [Account("odd", -1, 1)]),
    ("short:x:1000:1000\n", [Account("short", 1000, 1000)]),
    ("# comment:x:0:0:::\n:x:0:0:::\nonly:two\n\n", []),
    (
        "a:x:1:1:a:/home/a:/bin/sh\na:x:2:2:a2:/home/a2:/bin/sh\n",
        [
            Account("a", 1, 1, "/home/a", "/bin/sh", True),
            Account("a", 2, 2, "/home/a2", "/bin/sh", True),
        ],
    ),
    ("nul\0name:x:5:5:n:/h:/s\r\n", [Account("nul\0name", 5, 5, "/h", "/s", True)]),
]


@pytest.mark.parametrize(("text", "expected"), PASSWD_CASES)
def test_passwd_lines(text, expected):
    assert accounts.parse_passwd(text) == expected


def test_the_first_line_of_a_name_wins_as_getpwnam_finds_it():
    found = accounts.parse_passwd("a:x:1:1:a:/home/a:/bin/sh\na:x:2:2:a2:/home/a2:/bin/sh\nb:x:3:4\n")
    assert accounts.ids_by_name(found) == {"a": (1, 1), "b": (3, 4)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("root:x:0:\ncrontab:x:107:\n", [("root", 0), ("crontab", 107)]),
        ("bad:x:notanumber:\n:x:5:\nshort:x\n", []),
    ],
)
def test_group_lines(text, expected):
    assert accounts.parse_group(text) == expected


def test_read_from_the_root_never_from_a_link_out_of_it(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "group").write_text("wheel:x:10:\ncrontab:x:107:\n")
    outside = tmp_path / "outside-passwd"
    outside.write_text("intruder:x:0:0::/:/bin/sh\n")
    os.symlink("../../outside-passwd", root / "etc" / "passwd")
    # the link resolves inside the root, where nothing is: unreadable, not the rescuer's file
    assert accounts.read_passwd(str(root)) is None
    assert accounts.group_id(str(root), "crontab") == 107
    assert accounts.group_id(str(root), "nobody") is None
    (root / "etc" / "group").unlink()
    assert accounts.read_group(str(root)) is None
    assert accounts.group_id(str(root), "crontab") is None
