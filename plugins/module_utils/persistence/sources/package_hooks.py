# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: what package managers run as root besides the packages' own scripts.

APT's hooks (``DPkg::Post-Invoke``, ``APT::Update::Pre-Invoke``, ... in /etc/apt/apt.conf and the
files apt reads from apt.conf.d, and the files they ``#include``), dpkg's ``pre-invoke``,
``post-invoke`` and ``status-logger`` (dpkg.cfg, dpkg.cfg.d), and yum and dnf plugins (Python code
loaded into every run). apt-daily runs ``apt-get update`` by itself twice a day, so an update hook
runs as root without anyone installing anything.

Each hook command is a line item run as root with the traits ``hook`` and, unless it only removes
apt's cached downloads (as the official Debian container image's unpackaged docker-clean does),
``foreign-hook``; ``config-line`` says the line can be commented out without breaking the file.
Each enabled plugin is a file item with the trait ``plugin``.
"""

from __future__ import annotations

import configparser
import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import apt_config, hook_scripts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

KIND = "package_hook"
APT_CONF = "/etc/apt/apt.conf"
APT_CONF_DIR = "/etc/apt/apt.conf.d"
DPKG_CFG = "/etc/dpkg/dpkg.cfg"
DPKG_CFG_DIR = "/etc/dpkg/dpkg.cfg.d"
DPKG_HOOKS = ("pre-invoke", "post-invoke", "status-logger")
YUM_PLUGIN_CONF_DIR = "/etc/yum/pluginconf.d"
YUM_PLUGIN_DIRS = ("/usr/lib/yum-plugins", "/usr/share/yum-plugins")
DNF_PLUGIN_CONF_DIR = "/etc/dnf/plugins"
DNF_LIBRARY_DIRS = ("/usr/lib", "/usr/lib64")
# apt reads a file of a .d directory when its name has only these characters and either no dot or
# the extension .conf; #include of a directory follows the same rule.
_APT_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PYTHON_DIR = re.compile(r"python3(\.[0-9]+)?")
# docker-clean: the only hook of an unpackaged file a stock system has.
_CACHE_CLEANUP = re.compile(r"rm -f( +/var/cache/apt/[^\s;&|`$]+)+( *\|\| *true)?")
_DPKG_OPTION = re.compile(r"([^\s=]+)\s*(?:=\s*)?(.*)")
_MAX_INCLUDE_DEPTH = 4
_TRUE = ("1", "yes", "true", "on")


def collect(reader: RootReader) -> None:
    # apt reads the parts directory first, then apt.conf.
    for path in _apt_parts(reader, APT_CONF_DIR):
        _apt_file(reader, path, 0)
    _apt_file(reader, APT_CONF, 0)
    _dpkg_file(reader, DPKG_CFG)
    for path, _is_link in reader.entries(KIND, DPKG_CFG_DIR):
        if hook_scripts.run_parts_name(posixpath.basename(path)):
            _dpkg_file(reader, path)
    _yum_plugins(reader)
    _dnf_plugins(reader)


def hook_traits(command: str, whole_line: bool) -> frozenset[str]:
    traits = {"hook"}
    if not _CACHE_CLEANUP.fullmatch(command.strip()):
        traits.add("foreign-hook")
    if whole_line:
        traits.add("config-line")
    return frozenset(traits)


def apt_reads(name: str) -> bool:
    """Whether apt reads a file of that name from a configuration directory."""
    if name.startswith(".") or not _APT_NAME.fullmatch(name):
        return False
    return "." not in name or name.endswith(".conf")


def _apt_parts(reader: RootReader, directory: str) -> list[str]:
    return [
        path
        for path, _is_link in reader.entries(KIND, directory)
        if apt_reads(posixpath.basename(path)) and reader.kind_of(path) != "directory"
    ]


def _apt_file(reader: RootReader, path: str, depth: int) -> None:
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    shown = dict(reader.text_lines(facts))
    settings, problem = apt_config.parse(facts.data.decode("utf-8", "replace"))
    if problem:
        facts.notes.append(f"apt refuses this file ({problem}): no apt command runs until it is fixed")
        reader.note(KIND, path, f"apt syntax error, {problem}")
    for setting in settings:
        if setting.directive == "include" and depth < _MAX_INCLUDE_DEPTH:
            _apt_include(reader, facts, setting.value, depth + 1)
            continue
        hook = apt_config.hook_of(setting.key)
        if hook is None or not setting.value.strip():
            continue
        item = reader.command_item(
            facts, setting.line, shown.get(setting.line, ""), setting.value, user="root"
        )
        item.traits = hook_traits(setting.value, setting.whole_line)
        facts.jobs += 1
        if setting.first_line != setting.line:
            facts.notes.append(f"the {hook} hook of line {setting.line} starts on line {setting.first_line}")


def _apt_include(reader: RootReader, facts: FileFacts, target: str, depth: int) -> None:
    if not target.startswith("/"):
        facts.notes.append(f"#include {target}: a relative path, read from apt's working directory")
        return
    if target.endswith("/"):
        for path in _apt_parts(reader, target.rstrip("/")):
            _apt_file(reader, path, depth)
    else:
        _apt_file(reader, target, depth)


def _dpkg_file(reader: RootReader, path: str) -> None:
    """dpkg's configuration: one long option a line, its value after a blank or '='."""
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    for number, text in reader.text_lines(facts):
        stripped = text.strip()
        if stripped.startswith("#"):
            continue
        option = _DPKG_OPTION.match(stripped)
        if option is None:
            continue
        name, value = option.group(1), option.group(2).strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if name not in DPKG_HOOKS or not value:
            continue
        item = reader.command_item(facts, number, text, value, user="root")
        item.traits = hook_traits(value, True)
        facts.jobs += 1


def _enabled(reader: RootReader, path: str, *, default: bool) -> bool:
    """The ``enabled`` key of a plugin's ini file (its [main] section)."""
    facts = reader.file(KIND, path, read=True)
    if facts is None or facts.data is None:
        return default
    config = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        config.read_string(facts.data.decode("utf-8", "replace"))
    except configparser.Error as exc:
        facts.notes.append(f"cannot be read as an ini file: {str(exc).splitlines()[0]}")
        return default
    value = config.get("main", "enabled", fallback=None)
    return default if value is None else value.strip().lower() in _TRUE


def _plugin(reader: RootReader, path: str) -> None:
    facts = reader.file(KIND, path)
    if facts is None:
        return
    reader.file_item(facts, runs=True)
    reader.items[-1].traits = frozenset({"plugin"})


def _yum_plugins(reader: RootReader) -> None:
    """yum loads a plugin of its plugin directories when its pluginconf.d file says enabled=1."""
    for conf, _is_link in reader.entries(KIND, YUM_PLUGIN_CONF_DIR):
        name, extension = posixpath.splitext(posixpath.basename(conf))
        if extension != ".conf" or not _enabled(reader, conf, default=False):
            continue
        for directory in YUM_PLUGIN_DIRS:
            if reader.kind_of(f"{directory}/{name}.py") == "file":
                _plugin(reader, f"{directory}/{name}.py")
                break


def _dnf_plugins(reader: RootReader) -> None:
    """dnf loads every module of its plugin directories unless the plugin's conf says enabled=0."""
    for library in DNF_LIBRARY_DIRS:
        for python, _is_link in reader.entries(KIND, library, once=False):
            if not _PYTHON_DIR.fullmatch(posixpath.basename(python)):
                continue
            for packages in ("site-packages", "dist-packages"):
                for path, _link in reader.entries(KIND, f"{python}/{packages}/dnf-plugins"):
                    name, extension = posixpath.splitext(posixpath.basename(path))
                    if extension != ".py" or name == "__init__":
                        continue
                    if _enabled(reader, f"{DNF_PLUGIN_CONF_DIR}/{name}.conf", default=True):
                        _plugin(reader, path)
