# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: code every Python start runs. In each site-packages and dist-packages directory of every
Python of the root (and each home's ~/.local/lib/python*/site-packages), a .pth file line that
starts with `import` is executed by the site module at every start; sitecustomize.py and
usercustomize.py are imported at every start. Each .pth file and each customize module is an item,
and each import line of a .pth file is one too.

Traits: "pth-import" (an import line that is not one of the lines packaging tools write themselves:
setuptools' distutils-precedence and namespace-package lines, editable installs' finders,
virtualenv's and coverage's hooks) and "customize-module".
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

LIBRARY_PARENTS = ("/usr/lib", "/usr/local/lib", "/usr/lib64", "/usr/local/lib64", "/opt/python/lib")
HOME_LIBRARY = ".local/lib"
PACKAGE_DIRS = ("site-packages", "dist-packages")
CUSTOMIZE = ("sitecustomize.py", "usercustomize.py")
_PYTHON_DIR = re.compile(r"python[0-9][0-9.]*$|python3$")
# Import lines packaging tools write into .pth files, each matched whole: none runs anything but the
# tool's own hook.
_KNOWN_LINES = (
    re.compile(
        r"import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os\.environ\.get\(var, '(local|stdlib)'\)"
        r" == 'local'; enabled and __import__\('_distutils_hack'\)\.add_shim\(\); ?"
    ),
    re.compile(r"import sys, types, os;has_mfs = sys\.version_info > \(3, 5\);p = os\.path\.join\(.*"),
    re.compile(r"import sys, types, os;p = os\.path\.join\(sys\._getframe\(1\)\.f_locals\['sitedir'\].*"),
    re.compile(r"import (__editable___[A-Za-z0-9_]+_finder); \1\.install\([^()]*\)"),
    re.compile(r"import _virtualenv"),
    # easy_install's easy-install.pth keeps its eggs ahead of the rest of sys.path.
    re.compile(r"import sys; sys\.__plen = len\(sys\.path\)"),
    re.compile(
        r"import sys; new = sys\.path\[sys\.__plen:\]; del sys\.path\[sys\.__plen:\]; "
        r"p = getattr\(sys, '__egginsert', 0\); sys\.path\[p:p\] = new; sys\.__egginsert = p \+ len\(new\)"
    ),
    re.compile(r"import coverage; coverage\.process_startup\(\)"),
)


def collect(reader: RootReader) -> None:
    parents = [(p, None) for p in LIBRARY_PARENTS]
    parents += [(posixpath.join(a.home, HOME_LIBRARY), a) for a in reader.homes()]
    for parent, account in parents:
        for python, _is_link in reader.entries("python_startup", parent, once=False):
            if not _PYTHON_DIR.match(posixpath.basename(python)) or reader.kind_of(python) != "directory":
                continue
            _customize(reader, python, account)
            for name in PACKAGE_DIRS:
                directory = posixpath.join(python, name)
                for path, _is_link in reader.entries("python_startup", directory, once=False):
                    if path.endswith(".pth"):
                        _pth(reader, path, account)
                _customize(reader, directory, account)
    for etc, _is_link in reader.entries("python_startup", "/etc", once=False):
        if _PYTHON_DIR.match(posixpath.basename(etc)):
            _customize(reader, etc, None)


def _customize(reader: RootReader, directory: str, account) -> None:
    for name in CUSTOMIZE:
        path = posixpath.join(directory, name)
        if reader.kind_of(path) == "file":
            facts = reader.file("python_startup", path, account)
            if facts is not None:
                _file_item(reader, facts, {"customize-module"})


def _file_item(reader: RootReader, facts: FileFacts, traits: set[str]) -> None:
    reader.items.append(
        Item(
            "python_startup",
            facts,
            user=facts.account.name if facts.account else "",
            # Imported, not run as a program: the rules on programs' paths (~/.local is dotted) do
            # not apply.
            references=(facts.path,),
            traits=frozenset(traits),
        )
    )


def _pth(reader: RootReader, path: str, account) -> None:
    facts = reader.file("python_startup", path, account)
    if facts is None:
        return
    _file_item(reader, facts, set())
    for number, text in reader.text_lines(facts):
        # site.py runs a line that starts with "import" followed by a space or a tab.
        if not text.startswith(("import ", "import\t")):
            continue
        known = any(p.fullmatch(text.rstrip()) for p in _KNOWN_LINES)
        # Python code, not a shell line: the paths it names are evidence, not programs it is known to run.
        paths = tuple(dict.fromkeys(re.findall(r"""['"](/[^'"\s]+)['"]""", text)))
        reader.items.append(
            Item(
                "python_startup",
                facts,
                number,
                text,
                text.strip(),
                facts.account.name if facts.account else "",
                references=paths,
                traits=frozenset(() if known else {"pth-import"}),
            )
        )
