"""Where the checkout's files are, for every lane."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The unit lane's data files (cron corpus and logs, the stand-in drill playbook); the oracle lane reads
# the cron corpus too.
DATA = REPO / "tests" / "unit" / "data"
# The drill role's fault planters (glibc.sh, cron.sh): the same faults the drills and molecule plant.
PLANTERS = REPO / "roles" / "drill" / "files"
# The persistence rules the collection ships.
RULES_FILE = REPO / "roles" / "crontab_repair" / "files" / "persistence_rules.yml"
# Data shared beside the repository (real package databases with the output of real rpm); read in
# place, never copied into the project.
SHARED = REPO.parent / "shared"
RPM_CORPUS = SHARED / "rpm-corpus"
