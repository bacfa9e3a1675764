"""The command line: ``python -m lifeline_drill --inventory INV --matrix MATRIX.yml ...``.

Exit codes: 0 every drill recovered, 1 some drill did not, 2 the command line or the matrix is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from lifeline_drill.matrix import MatrixError, load_matrix, parse_extra_vars, select, with_extra_vars
from lifeline_drill.reports import Document, summarize, summary_markdown, write_reports
from lifeline_drill.run import DEFAULT_PLAYBOOK, Console, Settings, run_matrix

PROG = "python -m lifeline_drill"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run fault drills: plant a fault on a disposable target, prove it broke, run the "
        "recovery playbook, prove it recovered; time each phase (playbooks/drill.yml, one run per drill).",
    )
    parser.add_argument("--inventory", required=True, type=Path, help="Ansible inventory of the targets")
    parser.add_argument(
        "--matrix", required=True, type=Path, help="YAML file: drills: [{fault, targets, vars}]"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("drill-results"), help="output directory (default: ./drill-results)"
    )
    parser.add_argument(
        "--only", nargs="+", action="extend", default=[], metavar="FAULT", help="run only these faults"
    )
    parser.add_argument(
        "--target", nargs="+", action="extend", default=[], metavar="HOST", help="run only on these targets"
    )
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra variable for every drill (a string; overrides the matrix's vars)",
    )
    parser.add_argument("--timeout", type=_positive_int, metavar="SECONDS", help="time limit of each drill")
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="targets drilled at the same time (default 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the end of each drill")
    return parser


def _usage_error(message: str) -> int:
    for line in message.splitlines():
        print(f"{PROG}: error: {line}", file=sys.stderr)
    return EXIT_USAGE


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: Sequence[str] | None = None, *, playbook: Path | None = None) -> int:
    """Run the drills the command line selects; ``playbook`` replaces drill.yml (tests)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error (it printed why)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    inventory = args.inventory.resolve()
    playbook = (playbook or DEFAULT_PLAYBOOK).resolve()
    if not inventory.exists():
        return _usage_error(f"--inventory {args.inventory}: no such file or directory")
    if not playbook.is_file():
        return _usage_error(f"{playbook}: the drill playbook is missing")
    try:
        drills = load_matrix(args.matrix)
        drills = with_extra_vars(drills, parse_extra_vars(args.extra_vars))
        drills = select(drills, args.only, args.target)
    except MatrixError as exc:
        return _usage_error(str(exc))
    out = args.out.resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _usage_error(f"--out {args.out}: {exc.strerror or exc}")

    settings = Settings(inventory, out, playbook, args.timeout, args.jobs)
    console = Console(quiet=args.quiet)
    started = _now()
    records = run_matrix(drills, settings, console)
    document: Document = {
        "started": started,
        "finished": _now(),
        "inventory": str(inventory),
        "matrix": str(args.matrix.resolve()),
        "drills": records,
        "summary": summarize(records),
    }
    written = write_reports(out, document)
    console.text("\n" + summary_markdown(document))
    console.text("Reports: " + ", ".join(str(path) for path in written))
    return EXIT_OK if document["summary"]["failed"] == 0 else EXIT_FAILED
