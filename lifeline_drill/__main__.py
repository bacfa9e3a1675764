"""``python -m lifeline_drill``: run the drill matrix (see cli.py)."""

from lifeline_drill.cli import main

raise SystemExit(main())
