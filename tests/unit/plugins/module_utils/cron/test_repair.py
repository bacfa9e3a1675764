"""crontab_repair: what a damaged crontab becomes (data tables), and the repair of a whole root:
backups, owners and modes, renames, a concurrent writer, check mode, idempotence, hostile files."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import repair as crontab_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.repair import RepairError

HOURLY = b"17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n"
DAILY = b"25 6\t* * *\troot\ttest -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )\n"
MINUTE = b"* * * * * root date >> /var/tmp/lifeline-minute.log\n"
MALWARE = b"*/3 * * * * root /usr/bin/.sysupdate\n"
HEAD = (
    b"SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
    b"# m h dom mon dow user\tcommand\n"
)
NULS = b"\0" * 4096


def salvaged(
    data: bytes, kind: str = cron_files.SYSTEM, users: set[str] | None = None
) -> crontab_repair.Salvage:
    return crontab_repair.salvage(
        data, kind, cron_files.Reader({u: (0, 0) for u in users} if users else None)
    )


# ---- salvage: data tables -------------------------------------------------------------------------

CASES = [
    # (id, damaged bytes, expected bytes, expected actions as (line, action))
    ("healthy file untouched", HEAD + HOURLY + DAILY, HEAD + HOURLY + DAILY, []),
    (
        "NUL block between lines removed",
        HEAD + HOURLY + NULS + b"\n" + DAILY,
        HEAD + HOURLY + DAILY,
        [(5, "removed")],
    ),
    (
        "NUL block glued before the next line (the incident's bad minute)",
        HEAD + HOURLY + NULS + DAILY,
        HEAD + HOURLY + DAILY,
        [(5, "cleaned")],
    ),
    (
        "NUL run inside a job comes back whole",
        HEAD + MINUTE[:20] + NULS + MINUTE[20:],
        HEAD + MINUTE,
        [(4, "cleaned")],
    ),
    (
        "NULs where a newline was: two lines again",
        HEAD + MINUTE[:-1] + NULS + MALWARE,
        HEAD + MINUTE + MALWARE,
        [(4, "split"), (4, "split")],
    ),
    (
        "a line the NULs overwrote stays, commented",
        HEAD + NULS + b" * * root /usr/local/bin/backup\n" + DAILY,
        HEAD + b"# lifeline-invalid (bad day-of-month):  * * root /usr/local/bin/backup\n" + DAILY,
        [(4, "commented")],
    ),
    (
        "bad minute commented",
        HEAD + b"61 * * * * root true\n",
        HEAD + b"# lifeline-invalid (bad minute): 61 * * * * root true\n",
        [(4, "commented")],
    ),
    (
        "bad hour commented",
        b"0 24 * * * root true\n",
        b"# lifeline-invalid (bad hour): 0 24 * * * root true\n",
        [(1, "commented")],
    ),
    (
        "bad month commented",
        b"0 0 1 foo * root true\n",
        b"# lifeline-invalid (bad month): 0 0 1 foo * root true\n",
        [(1, "commented")],
    ),
    (
        "no command commented",
        b"0 0 1 1 * root\n",
        b"# lifeline-invalid (bad command): 0 0 1 1 * root\n",
        [(1, "commented")],
    ),
    (
        "CRLF line endings cleaned",
        b"SHELL=/bin/sh\r\n" + MINUTE[:-1] + b"\r\n",
        b"SHELL=/bin/sh\n" + MINUTE,
        [(1, "cleaned"), (2, "cleaned")],
    ),
    ("a last line without newline gets one", HOURLY + MINUTE[:-1], HOURLY + MINUTE, [(2, "newline")]),
    ("only NULs: empty", NULS * 3, b"", [(1, "removed")]),
    ("empty stays empty", b"", b"", []),
    ("comments and blank lines kept as they are", b"# x\n\n   \n#\0\n", b"# x\n\n   \n#\n", [(4, "cleaned")]),
    (
        "control bytes inside a job removed",
        b"0 5 * * * root /usr/bin/\x1b[0mlogrotate\n",
        b"0 5 * * * root /usr/bin/[0mlogrotate\n",
        [(1, "cleaned")],
    ),
    (
        "invalid UTF-8 in a valid job kept byte for byte",
        b"0 5 * * * root echo caf\xe9 > /dev/null\n",
        b"0 5 * * * root echo caf\xe9 > /dev/null\n",
        [],
    ),
    (
        "idempotent on its own marker lines",
        b"# lifeline-invalid (bad minute): 61 * * * * root true\n",
        b"# lifeline-invalid (bad minute): 61 * * * * root true\n",
        [],
    ),
]


@pytest.mark.parametrize(
    ("damaged", "expected", "actions"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_salvage_keeps_every_valid_line_and_explains_each_change(damaged, expected, actions):
    result = salvaged(damaged)
    assert result.data == expected
    assert [(a.line, a.action) for a in result.actions] == actions
    # A second salvage of the result changes nothing: the repair is idempotent.
    again = salvaged(result.data)
    assert again.data == result.data and again.actions == []


def test_salvage_of_a_user_crontab_has_no_user_field():
    result = salvaged(b"*/5 * * * * /usr/bin/backup\0\0 --now\n61 * * * * x\n", cron_files.USER)
    assert (
        result.data == b"*/5 * * * * /usr/bin/backup --now\n# lifeline-invalid (bad minute): 61 * * * * x\n"
    )


def test_salvage_with_known_users_comments_a_job_of_an_unknown_user():
    result = salvaged(b"* * * * * root true\n* * * * * mallory true\n", users={"root"})
    assert result.data == b"* * * * * root true\n# lifeline-invalid (bad username): * * * * * mallory true\n"


def test_every_valid_line_survives_a_random_pollution_in_order():
    """Thousands of jobs with NUL runs sprinkled between them: each job comes back, in order."""
    jobs = [f"{i % 60} {i % 24} * * * root /usr/local/bin/job-{i} --flag\n".encode() for i in range(3000)]
    damaged = b"".join(job + (NULS[: (i * 37) % 700] if i % 5 == 0 else b"") for i, job in enumerate(jobs))
    assert salvaged(damaged).data == b"".join(jobs)


def test_50_mb_of_nuls_is_salvaged_fast(deadline):
    with deadline(10):
        started = time.monotonic()
        result = salvaged(HOURLY + b"\0" * (50 << 20) + DAILY)
        elapsed = time.monotonic() - started
    assert result.data == HOURLY + DAILY
    assert elapsed < 5


def test_a_line_of_1_mb_is_commented_and_reported_shortened(deadline):
    line = b"* * * * * root echo " + b"x" * (1 << 20)
    with deadline(10):
        result = salvaged(b"61" + line[1:] + b"\n")
    assert result.data.startswith(b"# lifeline-invalid (bad minute): 61")
    assert len(result.actions[0].before) < 300


# ---- plan and apply on a root -------------------------------------------------------------------


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for directory in ("etc/cron.d", "var/spool/cron/crontabs", "var/log"):
        (root / directory).mkdir(parents=True)
    (root / "usr").mkdir()
    (root / "etc/os-release").write_text('ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    (root / "etc/group").write_text("root:x:0:\ncrontab:x:101:\nalice:x:1000:\n")
    return root


def write(path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> Path:
    path.write_bytes(data)
    os.chown(path, *owner)
    os.chmod(path, mode)
    return path


def plans_for(root: Path, **kwargs) -> list[crontab_repair.FilePlan]:
    reader = cron_files.reader_of(str(root))
    found = [crontab_repair.plan(str(root), f, reader, **kwargs) for f in cron_files.audit(str(root))]
    return [p for p in found if p is not None]


def test_apply_backs_up_and_repairs_every_kind_of_crontab(tmp_path):
    root = make_root(tmp_path)
    write(root / "etc/crontab", HEAD + HOURLY + NULS + DAILY, mode=0o664)
    write(root / "etc/cron.d/backup", b"*/5 * * * * root /usr/bin/ba\0\0ckup\n", owner=(1000, 1000))
    write(
        root / "var/spool/cron/crontabs/alice",
        b"@daily /home/alice/bin/report",
        mode=0o644,
        owner=(1000, 1000),
    )
    write(root / "etc/cron.d/ok", HOURLY)
    plans = plans_for(root)
    assert [p.path for p in plans] == ["/etc/crontab", "/etc/cron.d/backup", "/var/spool/cron/crontabs/alice"]
    crontab_repair.apply(str(root), plans, "/var/backups/lifeline")

    assert (root / "etc/crontab").read_bytes() == HEAD + HOURLY + DAILY
    assert stat.S_IMODE((root / "etc/crontab").stat().st_mode) == 0o644
    backup = root / plans[0].backup.lstrip("/")
    assert backup.read_bytes() == HEAD + HOURLY + NULS + DAILY
    assert (root / "etc/cron.d/backup").read_bytes() == b"*/5 * * * * root /usr/bin/backup\n"
    assert (root / "etc/cron.d/backup").stat().st_uid == 0
    alice = (root / "var/spool/cron/crontabs/alice").stat()
    assert (root / "var/spool/cron/crontabs/alice").read_bytes() == b"@daily /home/alice/bin/report\n"
    assert (stat.S_IMODE(alice.st_mode), alice.st_uid, alice.st_gid) == (0o600, 1000, 101)
    # Everything is healthy now and a second plan has nothing to do.
    assert all(f.healthy for f in cron_files.audit(str(root)))
    assert plans_for(root) == []


def test_a_writer_that_changes_the_file_between_plan_and_write_stops_the_repair(tmp_path):
    root = make_root(tmp_path)
    write(root / "etc/crontab", HOURLY + NULS + DAILY)
    plans = plans_for(root)
    concurrent = HOURLY + NULS + DAILY + MALWARE
    (root / "etc/crontab").write_bytes(concurrent)
    with pytest.raises(Exception, match="changed while it was being repaired"):
        crontab_repair.apply(str(root), plans, "/var/backups/lifeline")
    assert (root / "etc/crontab").read_bytes() == concurrent


def test_a_declared_baseline_wins_and_lists_what_it_leaves_out(tmp_path):
    root = make_root(tmp_path)
    write(root / "etc/crontab", HEAD + HOURLY + NULS + MALWARE)
    baseline = "SHELL=/bin/sh\n" + HOURLY.decode()
    (plan,) = plans_for(root, baseline=baseline)
    assert plan.after == baseline.encode()
    dropped = [a.before for a in plan.actions if a.action == "dropped"]
    assert MALWARE.decode().strip() in dropped
    assert HOURLY.decode().strip() not in dropped


def test_a_baseline_cron_would_refuse_is_refused_before_anything_is_written(tmp_path):
    root = make_root(tmp_path)
    write(root / "etc/crontab", HOURLY)
    with pytest.raises(RepairError, match="line 2: bad minute"):
        plans_for(root, baseline="SHELL=/bin/sh\n99 * * * * root true\n")


@pytest.mark.parametrize(
    ("name", "offered"),
    [
        ("backup.sh", "/etc/cron.d/backup_sh"),
        ("php.dpkg-old", ""),
        ("sysstat.disabled", ""),
        ("job~", ""),
        (".placeholder", ""),
    ],
)
def test_an_ignored_cron_d_name_is_offered_a_rename_and_renamed_only_when_asked(tmp_path, name, offered):
    root = make_root(tmp_path)
    write(root / "etc/cron.d" / name, b"0 1 * * * root true\0\n")
    plans = plans_for(root)
    if not offered:
        assert plans == [], "a switched-off file is neither renamed nor repaired"
        return
    (plan,) = plans
    assert (plan.rename_to, plan.rename, plan.after) == (offered, False, plan.before)
    (plan,) = plans_for(root, rename_cron_d=True)
    crontab_repair.apply(str(root), [plan], "/var/backups/lifeline")
    assert (root / offered.lstrip("/")).read_bytes() == b"0 1 * * * root true\n"
    assert not (root / "etc/cron.d" / name).exists()


# ---- hostile roots ---------------------------------------------------------------------------------


def test_a_crontab_that_is_a_directory_is_reported_and_left_alone(tmp_path):
    root = make_root(tmp_path)
    (root / "etc/crontab").mkdir()
    (checked,) = [f for f in cron_files.audit(str(root)) if f.path == "/etc/crontab"]
    assert "not a regular file" in checked.unreadable
    assert plans_for(root) == []
    assert (root / "etc/crontab").is_dir()


def test_a_symlink_loop_in_cron_d_is_reported_and_left_alone(tmp_path, deadline):
    root = make_root(tmp_path)
    os.symlink("b", root / "etc/cron.d/a")
    os.symlink("a", root / "etc/cron.d/b")
    with deadline(5):
        checked = {f.path: f for f in cron_files.audit(str(root))}
    assert "symbolic links" in checked["/etc/cron.d/a"].unreadable
    assert plans_for(root) == []
    assert os.path.islink(root / "etc/cron.d/a")


def test_a_cron_d_link_out_of_the_root_is_never_followed(tmp_path):
    root = make_root(tmp_path)
    outside = tmp_path / "outside"
    outside.write_bytes(b"61 * * * * root rescuer-file\n")
    os.symlink("../../../outside", root / "etc/cron.d/escape")
    os.symlink(str(outside), root / "etc/cron.d/absolute")
    checked = {f.path: f for f in cron_files.audit(str(root))}
    assert "out of the root" in checked["/etc/cron.d/escape"].unreadable
    # An absolute link resolves inside the root, where nothing is: missing, never the rescuer's file.
    assert checked["/etc/cron.d/absolute"].data is None
    assert outside.read_bytes() == b"61 * * * * root rescuer-file\n"


def test_an_orphan_user_crontab_and_an_ignored_cron_d_file_are_reported_and_left_alone(tmp_path):
    root = make_root(tmp_path)
    write(root / "var/spool/cron/crontabs/ghost", b"* * * * * echo hi\n", mode=0o644)
    write(root / "etc/cron.d/backup.sh", b"0 3 * * * root /usr/local/bin/backup.sh\n", mode=0o664)
    checked = {f.path: f for f in cron_files.audit(str(root))}
    assert "ORPHAN" in checked["/var/spool/cron/crontabs/ghost"].ignored
    assert checked["/var/spool/cron/crontabs/ghost"].healthy
    plans = plans_for(root)
    assert [(p.path, p.changed, p.rename_to) for p in plans] == [
        ("/etc/cron.d/backup.sh", False, "/etc/cron.d/backup_sh")
    ]
    crontab_repair.apply(str(root), plans, "/var/backups/lifeline")
    assert stat.S_IMODE((root / "etc/cron.d/backup.sh").stat().st_mode) == 0o664
    assert stat.S_IMODE((root / "var/spool/cron/crontabs/ghost").stat().st_mode) == 0o644
