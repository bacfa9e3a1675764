# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: scripts a web server runs on request. The usual document and CGI roots, and the roots
nginx (`root`) and Apache (`DocumentRoot`, `ScriptAlias`) configurations name, are walked (bounded);
each script no package owns (.php .phtml .jsp .aspx .cgi .pl .py .sh, and any file in a CGI
directory) is an item whose command is its text, so the rules' payload patterns (what evaluates
request data) judge it. Traits: "cgi-script" (it lies in a CGI directory, where the server runs
any file)."""

from __future__ import annotations

import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary

DOCUMENT_ROOTS = ("/var/www", "/srv/www", "/srv/http", "/usr/share/nginx/html", "/usr/share/nginx/www")
CGI_DIRS = ("/usr/lib/cgi-bin", "/var/www/cgi-bin")
SERVER_CONFIG_DIRS = (
    "/etc/nginx/sites-enabled",
    "/etc/nginx/conf.d",
    "/etc/apache2/sites-enabled",
    "/etc/apache2/conf-enabled",
    "/etc/httpd/conf.d",
)
SERVER_CONFIG_FILES = ("/etc/nginx/nginx.conf", "/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf")
SCRIPT = re.compile(r"\.(php[0-9]?|phtml|phar|jsp|jspx|aspx?|ashx|cgi|pl|py|sh)$", re.I)
# Web roots hold whole applications: more than this many entries under one root is a note.
MAX_ENTRIES = 100000
_NGINX_ROOT = re.compile(r"^\s*(root|alias)\s+(\"[^\"]+\"|'[^']+'|[^\s;]+)\s*;", re.M)
_APACHE_ROOT = re.compile(
    r"^\s*(DocumentRoot|ScriptAlias|Alias)\s+(?:\S+\s+)?(\"[^\"]+\"|\S+)\s*$", re.M | re.I
)


def collect(reader: RootReader) -> None:
    roots = dict.fromkeys(DOCUMENT_ROOTS)
    cgi = set(CGI_DIRS)
    for directory, kind in _configured_roots(reader):
        roots[directory] = None
        if kind == "cgi":
            cgi.add(directory)
    for directory in [*roots, *cgi]:
        resolved = reader.resolved_path(directory)
        if resolved is None or reader.kind_of(directory) != "directory":
            continue
        for path, _entry in reader.walk("web_shell", directory, limit=MAX_ENTRIES):
            in_cgi = any(path.startswith(d.rstrip("/") + "/") for d in cgi)
            if (in_cgi or SCRIPT.search(path)) and reader.unowned(path):
                _script(reader, path, in_cgi)


def _configured_roots(reader: RootReader) -> list[tuple[str, str]]:
    """(directory, "cgi" or "documents") the web servers' configurations name, in simple forms."""
    found: list[tuple[str, str]] = []
    configs = list(SERVER_CONFIG_FILES)
    for directory in SERVER_CONFIG_DIRS:
        configs += [p for p, _is_link in reader.entries("web_shell", directory)]
    for path in configs:
        facts = reader.file("web_shell", path)
        if facts is None or not facts.data or binary(facts.data):
            continue
        text = facts.data.decode("utf-8", "replace")
        for m in [*_NGINX_ROOT.finditer(text), *_APACHE_ROOT.finditer(text)]:
            value = m.group(2).strip("\"'")
            if value.startswith("/") and "$" not in value:
                kind = "cgi" if m.group(1).lower() == "scriptalias" else "documents"
                found.append((shell_commands.normal_path(value), kind))
    return found


def _script(reader: RootReader, path: str, in_cgi: bool) -> None:
    facts = reader.file("web_shell", path)
    if facts is None:
        return
    data = facts.data or b""
    text = "" if binary(data) else data.decode("utf-8", "replace")
    reader.items.append(
        Item(
            "web_shell",
            facts,
            command=text,
            user="www-data",
            executes=(path,),
            references=(path,),
            payload=path,
            traits=frozenset({"cgi-script"} if in_cgi else ()),
        )
    )
