# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: what goes into the initramfs and runs there, as root, before the real root is mounted.

initramfs-tools: the hooks update-initramfs runs (/etc/initramfs-tools/hooks and
/usr/share/initramfs-tools/hooks) and the boot scripts it copies in (``scripts/init-top``,
``local-bottom``, ... under both). dracut: the module directories of /usr/lib/dracut/modules.d
(module-setup.sh and everything it installs) and the configuration (/etc/dracut.conf,
/etc/dracut.conf.d, /usr/lib/dracut/dracut.conf.d) whose ``install_items`` put files in and whose
``add_dracutmodules`` pull modules in. Scripts are file items only: inside an initramfs /tmp and
/run are its own, so their lines say nothing about the installed system. A configuration line
that installs files or adds modules is an item with the trait ``initramfs-config``; what it runs is
the first of its files (or module-setup.sh of its modules) no package owns.

An initramfs already built keeps what it was built with: the report says to rebuild it.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import hook_scripts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import boot_loader

KIND = "initramfs_hook"
INITRAMFS_TOOLS = ("/etc/initramfs-tools", "/usr/share/initramfs-tools")
DRACUT_MODULES = "/usr/lib/dracut/modules.d"
DRACUT_CONF = "/etc/dracut.conf"
DRACUT_CONF_DIRS = ("/etc/dracut.conf.d", "/usr/lib/dracut/dracut.conf.d")
_DRACUT_SETTING = re.compile(
    r"\s*(install_items|install_optional_items|add_dracutmodules|dracutmodules|force_add_dracutmodules)"
    r"\+?=(.*)"
)


def collect(reader: RootReader) -> None:
    for base in INITRAMFS_TOOLS:
        hook_scripts.scripts(
            reader, KIND, f"{base}/hooks", name_ok=hook_scripts.not_hidden_or_leftover, lines=False
        )
        hook_scripts.scripts(
            reader,
            KIND,
            f"{base}/scripts",
            name_ok=hook_scripts.not_hidden_or_leftover,
            executable=False,
            recursive=True,
            lines=False,
        )
    hook_scripts.scripts(
        reader,
        KIND,
        DRACUT_MODULES,
        name_ok=hook_scripts.not_hidden_or_leftover,
        executable=False,
        recursive=True,
        lines=False,
    )
    _dracut_conf(reader, DRACUT_CONF)
    for directory in DRACUT_CONF_DIRS:
        for path, _is_link in reader.entries(KIND, directory):
            if path.endswith(".conf"):
                _dracut_conf(reader, path)


def _module_setup(reader: RootReader, name: str) -> str | None:
    """module-setup.sh of the dracut module called ``name`` (its directory is NN<name>)."""
    for path, _is_link in reader.entries(KIND, DRACUT_MODULES, once=False):
        base = posixpath.basename(path)
        if re.fullmatch(r"[0-9]{2}" + re.escape(name), base):
            return f"{path}/module-setup.sh"
    return None


def _dracut_conf(reader: RootReader, path: str) -> None:
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    for number, text in reader.text_lines(facts):
        setting = _DRACUT_SETTING.match(text)
        if setting is None:
            continue
        value, whole = boot_loader.shell_value(setting.group(2))
        words = value.split()
        whole = whole and not text.rstrip().endswith("\\")
        if "modules" in setting.group(1):
            files = [m for m in (_module_setup(reader, w) for w in words) if m]
        else:
            files = [w for w in words if w.startswith("/")]
        if not files:
            continue
        executes = reader.resolved_too(files)
        reader.items.append(
            Item(
                KIND,
                facts,
                number,
                text,
                " ".join(words),
                "root",
                executes=executes,
                references=executes,
                payload=reader.payload(executes),
                traits=frozenset({"initramfs-config", *(("config-line",) if whole else ())}),
            )
        )
