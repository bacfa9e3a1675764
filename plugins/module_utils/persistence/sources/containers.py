# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: containers their engine or kubelet starts again by itself. Docker's containers
(/var/lib/docker/containers/ID/hostconfig.json and config.v2.json), podman's
(overlay-containers/containers.json and each container's OCI config.json), podman's quadlet
.container units, and Kubernetes' static pods (/etc/kubernetes/manifests). Each container is one
item: its command (entrypoint and arguments) is what it runs, judged by the rules as any command.

Traits: "restarts" (the engine or kubelet starts it at boot: docker's always/unless-stopped, a
quadlet with an [Install] section or Restart=always, any static pod, a podman container while
podman-restart.service is enabled), "privileged", "mounts-host-root" (the host's / is mounted into
it), "host-pid", "host-network", and "engine-state" (the item is the engine's own record, which the
quarantine never edits: its step is manual, with the command that stops the container).

JSON is read bounded (model.MAX_TEXT) and a nesting too deep for the parser is a note; a static pod
manifest is read as YAML text lines, enough for the few keys that matter here.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

DOCKER = "/var/lib/docker/containers"
PODMAN = "/var/lib/containers/storage/overlay-containers"
QUADLET_DIRS = ("/etc/containers/systemd", "/usr/share/containers/systemd")
HOME_QUADLET_DIR = ".config/containers/systemd"
MANIFESTS = "/etc/kubernetes/manifests"
PODMAN_RESTART_LINKS = (
    "/etc/systemd/system/default.target.wants/podman-restart.service",
    "/etc/systemd/system/multi-user.target.wants/podman-restart.service",
)
_RESTARTING = ("always", "unless-stopped")


def collect(reader: RootReader) -> None:
    for directory, _is_link in reader.entries("container", DOCKER):
        _docker(reader, directory)
    _podman(reader)
    places = [(d, None) for d in QUADLET_DIRS]
    places += [(posixpath.join(a.home, HOME_QUADLET_DIR), a) for a in reader.homes()]
    for directory, account in places:
        for path, _is_link in reader.entries("container", directory, recursive=True):
            if path.endswith(".container"):
                _quadlet(reader, path, account)
    for path, _is_link in reader.entries("container", MANIFESTS):
        if path.endswith((".yaml", ".yml", ".json", ".manifest")):
            _static_pod(reader, path)


def manual_steps(item: Item) -> str:
    """What a responder runs on the booted host to stop an engine's container from coming back."""
    container = posixpath.basename(posixpath.dirname(item.file.path))
    if item.file.path.startswith(DOCKER + "/"):
        return (
            f"the engine's own state is never edited: once the host runs, stop the container from "
            f"restarting with `docker update --restart=no {shlex.quote(container)} && docker stop "
            f"{shlex.quote(container)}`, then review it (`docker inspect {shlex.quote(container)}`)"
        )
    container = item.text or container
    return (
        f"the engine's own state is never edited: once the host runs, `podman update --restart=no "
        f"{shlex.quote(container)} && podman stop {shlex.quote(container)}` (or `podman rm -f "
        f"{shlex.quote(container)}` after review)"
    )


def _json(reader: RootReader, facts: FileFacts | None) -> dict:
    if facts is None or not facts.data:
        return {}
    try:
        value = json.loads(facts.data.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as exc:
        reader.note("container", facts.path, f"not JSON an engine reads: {str(exc)[:120]}")
        return {}
    return value if isinstance(value, dict) else {}


def _words(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


def _item(reader: RootReader, facts: FileFacts, words: list[str], traits: set[str], name: str = "") -> None:
    command = " ".join(shlex.quote(w) for w in words)
    # A shell's -c string is a command line of its own: judged as one (download-and-run, ...).
    inner = [w for i, w in enumerate(words) if i and words[i - 1] == "-c"]
    programs, named = shell_commands.programs_and_paths(" ".join([command, *inner]))
    executes = tuple(dict.fromkeys(p for p in programs if p.startswith("/")))
    reader.items.append(
        Item(
            "container",
            facts,
            text=name,
            command="; ".join([command, *inner]),
            user="root",
            executes=executes,
            references=tuple(dict.fromkeys([*executes, *named])),
            traits=frozenset(traits),
        )
    )


def _docker(reader: RootReader, directory: str) -> None:
    hostconfig = reader.file("container", posixpath.join(directory, "hostconfig.json"))
    host = _json(reader, hostconfig)
    config = _json(reader, reader.file("container", posixpath.join(directory, "config.v2.json")))
    if hostconfig is None:
        return
    traits = {"engine-state"}
    policy = host.get("RestartPolicy") if isinstance(host.get("RestartPolicy"), dict) else {}
    if policy.get("Name") in _RESTARTING:
        traits.add("restarts")
    if host.get("Privileged") is True:
        traits.add("privileged")
    if host.get("PidMode") == "host":
        traits.add("host-pid")
    if host.get("NetworkMode") == "host":
        traits.add("host-network")
    sources = [str(b).split(":", 1)[0] for b in _words(host.get("Binds"))]
    mounts = host.get("Mounts") if isinstance(host.get("Mounts"), list) else []
    sources += [str(m.get("Source", "")) for m in mounts if isinstance(m, dict)]
    if any(shell_commands.normal_path(s) == "/" for s in sources if s.startswith("/")):
        traits.add("mounts-host-root")
    inner = config.get("Config") if isinstance(config.get("Config"), dict) else {}
    words = _words(inner.get("Entrypoint")) + _words(inner.get("Cmd"))
    if not words:
        words = _words(config.get("Path")) + _words(config.get("Args"))
    _item(reader, hostconfig, words, traits, str(config.get("Name", "")).lstrip("/"))


def _podman(reader: RootReader) -> None:
    listing = reader.file("container", posixpath.join(PODMAN, "containers.json"))
    if listing is None or not listing.data:
        return
    try:
        containers = json.loads(listing.data.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as exc:
        reader.note("container", listing.path, f"not JSON podman reads: {str(exc)[:120]}")
        return
    restarts = any(reader.kind_of(link) != "missing" for link in PODMAN_RESTART_LINKS)
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict) or not re.fullmatch(
            r"[0-9a-f]{12,64}", str(container.get("id", ""))
        ):
            continue
        names = _words(container.get("names"))
        path = posixpath.join(PODMAN, container["id"], "userdata", "config.json")
        facts = reader.file("container", path)
        spec = _json(reader, facts)
        if facts is None:
            continue
        traits = {"engine-state"} | ({"restarts"} if restarts else set())
        annotations = spec.get("annotations") if isinstance(spec.get("annotations"), dict) else {}
        if str(annotations.get("io.podman.annotations.privileged", "")).upper() == "TRUE":
            traits.add("privileged")
        mounts = spec.get("mounts") if isinstance(spec.get("mounts"), list) else []
        if any(isinstance(m, dict) and m.get("type") == "bind" and m.get("source") == "/" for m in mounts):
            traits.add("mounts-host-root")
        linux = spec.get("linux") if isinstance(spec.get("linux"), dict) else {}
        namespaces = {n.get("type") for n in linux.get("namespaces", []) if isinstance(n, dict)}
        if linux and "pid" not in namespaces:
            traits.add("host-pid")
        if linux and "network" not in namespaces:
            traits.add("host-network")
        process = spec.get("process") if isinstance(spec.get("process"), dict) else {}
        _item(reader, facts, _words(process.get("args")), traits, names[0] if names else container["id"])


def _quadlet(reader: RootReader, path: str, account) -> None:
    facts = reader.file("container", path, account)
    if facts is None:
        return
    section, traits, words = "", set(), []
    for _number, text in reader.text_lines(facts):
        stripped = text.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip()
            continue
        key, sep, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or stripped.startswith(("#", ";")):
            continue
        started_at_boot = section == "Install" and key in ("WantedBy", "RequiredBy", "UpheldBy")
        if started_at_boot or (section == "Service" and key == "Restart" and value == "always"):
            traits.add("restarts")
        elif section != "Container":
            continue
        elif key == "Exec":
            words += _split(value)
        elif key == "PodmanArgs":
            args = _split(value)
            if "--privileged" in args:
                traits.add("privileged")
            if any(a in ("--pid=host",) for a in args) or _pair(args, "--pid") == "host":
                traits.add("host-pid")
            if any(a in ("--network=host", "--net=host") for a in args) or _pair(args, "--network") == "host":
                traits.add("host-network")
        elif key == "Network" and value == "host":
            traits.add("host-network")
        elif (
            key == "Volume"
            and shell_commands.normal_path(value.split(":", 1)[0]) == "/"
            and value.startswith("/")
        ):
            traits.add("mounts-host-root")
        elif key == "AddCapability" and "ALL" in value.split():
            traits.add("privileged")
    _item(reader, facts, words, traits, posixpath.basename(path))


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _pair(args: list[str], option: str) -> str:
    return next((args[i + 1] for i, a in enumerate(args[:-1]) if a == option), "")


def _static_pod(reader: RootReader, path: str) -> None:
    """A static pod manifest read as lines: hostPID/hostNetwork/privileged set to true, a hostPath of
    /, and the entries of each command/args list."""
    facts = reader.file("container", path)
    if facts is None:
        return
    traits, words = {"restarts"}, []
    collecting: int | None = None
    host_path_at: int | None = None
    for _number, text in reader.text_lines(facts):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        marker = re.match(r" *(?:- +)?", text)
        indent = marker.end() if marker else 0
        entry = text[indent:].strip()
        key, sep, value = entry.partition(":")
        value = value.strip().strip("\"'")
        if collecting is not None and stripped.startswith("-") and indent > collecting:
            words.append(entry.strip("\"'"))
            continue
        collecting = None
        if sep and key in ("command", "args"):
            if value.startswith("["):
                words += [w.strip().strip("\"'") for w in value.strip("[]").split(",") if w.strip()]
            elif not value:
                collecting = indent
        elif sep and key == "hostPID" and value == "true":
            traits.add("host-pid")
        elif sep and key == "hostNetwork" and value == "true":
            traits.add("host-network")
        elif sep and key == "privileged" and value == "true":
            traits.add("privileged")
        elif sep and key == "hostPath":
            host_path_at = indent
        elif sep and key == "path" and host_path_at is not None and indent > host_path_at:
            if value.startswith("/") and shell_commands.normal_path(value) == "/":
                traits.add("mounts-host-root")
            host_path_at = None
    _item(reader, facts, words, traits, posixpath.basename(path))
