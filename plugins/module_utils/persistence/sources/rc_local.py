# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: rc.local, the script the boot runs last (/etc/rc.local; on Red Hat /etc/rc.d/rc.local, which
/etc/rc.local and the runlevels' S99local link to: read once, reported at its real path).

Under systemd, rc-local.service runs it only when it is executable (ConditionFileIsExecutable=, RHEL 7
and later ship it mode 0644): the item says whether it runs, and a script that does not run is still
read, since a chmod brings it back.
"""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import systemd_units

RC_LOCAL_PATHS = ("/etc/rc.d/rc.local", "/etc/rc.local")


def collect(reader: RootReader) -> None:
    condition = _executable_condition(reader)
    for path in RC_LOCAL_PATHS:
        facts = reader.file("rc_local", path)
        if facts is None:
            continue
        runs = True
        if condition and reader.resolved_path(condition) == facts.resolved:
            runs = bool(facts.st.st_mode & 0o111)
            facts.notes.append(
                f"{'executable' if runs else 'not executable'}: rc-local.service "
                f"{'runs it at boot' if runs else 'does not run it until it is made executable'} "
                f"(ConditionFileIsExecutable={condition})"
            )
        reader.file_item(facts, runs=runs)
        if facts.data is not None and not binary(facts.data):
            reader.command_lines(facts)


def _executable_condition(reader: RootReader) -> str | None:
    """The path rc-local.service requires to be executable, from the unit systemd would load (the
    first directory holding it); None when the root has no such unit. The systemd_units source ran
    before this one (scan.SOURCES) and read the unit."""
    for directory in systemd_units.SYSTEM_UNIT_DIRS:
        unit = f"{directory}/rc-local.service"
        facts = reader.files.get(unit) or reader.files.get(reader.resolved_path(unit) or "")
        if facts is None or facts.data is None:
            continue
        for _number, _text, key, value in systemd_units.unit_settings(facts.data):
            if key == "ConditionFileIsExecutable" and value.startswith("/"):
                return value
        return None
    return None
