#!/usr/bin/env python3
"""Benchmark: checking (and planning the repair of) a root with 10,000 crontab lines across files.

    .venv/bin/python tools/bench/crontab.py [LINES]      (default 10000)

Builds a root in a temporary directory: /etc/crontab, 40 files in /etc/cron.d, 20 user crontabs
and an anacrontab, holding LINES lines between them (jobs in every form cron accepts, environment
lines, comments, refused lines, NUL runs). Prints the best of 5 runs of the whole-root check
(crontab_audit's work) and of the repair plan, and exits non-zero when the check takes a second or
more: the check must stay cheap enough to run before and after every repair.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files  # noqa: E402
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import repair as crontab_repair  # noqa: E402

LIMIT = 1.0
SYSTEM_LINES = [
    "17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly",
    "*/5 9-17 * * mon-fri www-data /usr/local/bin/sync --quiet >/dev/null 2>&1",
    "0 4 1,15 jan,jul * root /usr/sbin/logrotate /etc/logrotate.conf",
    "@reboot root /usr/local/sbin/warm-cache",
    "30 2 * * 7 root test -x /usr/sbin/anacron || run-parts /etc/cron.weekly",
    "MAILTO=ops@example.org",
    'CRON_TZ="Europe/Berlin"',
    "# a comment about the next job",
    "",
    "61 * * * * root echo refused",
    "\0\0\0\0*/3 * * * * root /usr/bin/.sysupdate",
]
USER_LINES = [
    "*/10 * * * * $HOME/bin/poll --once",
    "0 8 * * 1-5 mail -s report ops@example.org < $HOME/report%line one%line two",
    "@daily tar czf $HOME/backup.tgz $HOME/data",
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "5 25 * * * echo bad hour",
]


def build(root: Path, total: int) -> None:
    for directory in ("etc/cron.d", "var/spool/cron/crontabs", "usr"):
        (root / directory).mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    users = [f"user{n}" for n in range(20)]
    (root / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n"
        + "".join(f"{u}:x:{1000 + n}:{1000 + n}::/home/{u}:/bin/sh\n" for n, u in enumerate(users))
    )
    system_files = [root / "etc/crontab"] + [root / f"etc/cron.d/job{n}" for n in range(40)]
    user_files = [root / f"var/spool/cron/crontabs/{u}" for u in users]
    per_file = total // (len(system_files) + len(user_files) + 1)
    written = 0
    for path, lines in [(p, SYSTEM_LINES) for p in system_files] + [(p, USER_LINES) for p in user_files]:
        path.write_text("".join(lines[i % len(lines)] + "\n" for i in range(per_file)))
        written += per_file
    anacron = [
        "1\t5\tcron.daily\trun-parts --report /etc/cron.daily",
        "@monthly 15 cron.monthly run-parts /etc/cron.monthly",
    ]
    (root / "etc/anacrontab").write_text("".join(anacron[i % 2] + "\n" for i in range(total - written)))


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, total)
        checked = cron_files.audit(str(root))
        lines = sum(len(f.data.split(b"\n")) - 1 for f in checked if f.data is not None)
        check = best_of(5, lambda: cron_files.audit(str(root)))
        reader = cron_files.reader_of(str(root))
        plan = best_of(
            5, lambda: [crontab_repair.plan(str(root), f, reader) for f in cron_files.audit(str(root))]
        )
    print(f"{lines} crontab lines in {len(checked)} files")
    print(f"check of the whole root: {check:.3f} s (best of 5; limit {LIMIT:.1f} s)")
    print(f"check + repair plan:     {plan:.3f} s (best of 5)")
    if check >= LIMIT:
        print(f"FAILED: the check took {check:.3f} s, not under {LIMIT:.1f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
