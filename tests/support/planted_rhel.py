"""Red Hat-style roots for the persistence tests: RHEL 6 (Upstart jobs in /etc/init, SysV scripts in
/etc/rc.d/init.d started by rc?.d links, rc.local run by S99local) and RHEL 7 (systemd, whose
rc-local.service runs /etc/rc.d/rc.local only when it is executable), nothing planted. The job and
script texts follow the shape of those RHEL 6 and 7 ship.

The packages are built by rpmbuild and installed by real rpm (``support.rpmbuild``), which writes
the root's package database; the chkconfig links come after, owned by nothing, as on a real system.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from support import rpmbuild
from support.planted import Link, plant
from support.rpmbuild import Package

PASSWD = "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"
PASSWD += "alice:x:500:500::/home/alice:/bin/bash\n"
GROUP = "root:x:0:\nbin:x:1:\nalice:x:500:\n"

TTY_CONF = """\
# tty - getty
#
# This service maintains a getty on the specified device.

stop on runlevel [S016]

respawn
instance $TTY
exec /sbin/mingetty $TTY
"""
CONTROL_ALT_DELETE_CONF = """\
# control-alt-delete - emergency keypress handling
#
# This task is run whenever the Control-Alt-Delete key combination is
# pressed.  Usually used to shut down the machine.

start on control-alt-delete

exec /sbin/shutdown -r now "Control-Alt-Delete pressed"
"""
RC_CONF = """\
# rc - System V runlevel compatibility
#
# This task runs the old sysv-rc runlevel scripts.  It
# is usually started by the telinit compatibility wrapper.

start on runlevel [0123456]

stop on runlevel [!$RUNLEVEL]

task

export RUNLEVEL
console output
exec /etc/rc.d/rc $RUNLEVEL
"""
START_TTYS_CONF = """\
#
# This service starts the configured number of gettys.

start on stopped rc RUNLEVEL=[2345]

env ACTIVE_CONSOLES=/dev/tty[1-6]
env X_TTY=/dev/tty1
task
script
\t. /etc/sysconfig/init
\tfor tty in $(echo $ACTIVE_CONSOLES) ; do
\t\t[ "$RUNLEVEL" = "5" -a "$tty" = "$X_TTY" ] && continue
\t\tinitctl start tty TTY=$tty
\tdone
end script
"""
# A job whose start on and stop on go on over lines: after a backslash, inside parentheses.
SERIAL_CONF = """\
# Automatically start a getty on the serial console, if there is one.

start on (fedora.serial-console-available CONSOLE=*
          and stopped rc RUNLEVEL=[2345])
stop on runlevel [S016]

instance $DEV
respawn
pre-start exec /sbin/securetty $DEV
exec /sbin/agetty /dev/$DEV \\
     $SPEED vt100-nav
"""
NETWORK_SCRIPT = """\
#! /bin/bash
#
# network       Bring up/down networking
#
# chkconfig: 2345 10 90
# description: Activates/Deactivates all network interfaces configured to \\
#              start at boot time.
. /etc/init.d/functions
case "$1" in
  start) /sbin/ifup eth0 ;;
  stop) /sbin/ifdown eth0 ;;
esac
"""
CROND_SCRIPT = """\
#!/bin/sh
#
# crond          Start/Stop the cron clock daemon.
#
# chkconfig: 2345 90 60
. /etc/rc.d/init.d/functions
case "$1" in
  start) daemon /usr/sbin/crond ;;
  stop) killproc crond ;;
esac
"""
FUNCTIONS = "# -*-Shell-script-*-\n# functions\tThis file contains functions to be used by most or all\n"
RC_LOCAL = """\
#!/bin/sh
#
# This script will be executed *after* all the other init scripts.
# You can put your own initialization stuff in here if you don't
# want to do the full Sys V style init stuff.

touch /var/lock/subsys/local
"""
RC_LOCAL_SERVICE = """\
#  This file is part of systemd.

# This unit gets pulled automatically into multi-user.target by
# systemd-rc-local-generator if /etc/rc.d/rc.local is executable.
[Unit]
Description=/etc/rc.d/rc.local Compatibility
ConditionFileIsExecutable=/etc/rc.d/rc.local
After=network.target

[Service]
Type=forking
ExecStart=/etc/rc.d/rc.local start
TimeoutSec=0
RemainAfterExit=yes
"""
PROGRAM = b"\x7fELF\x02\x01\x01\0"

# package: {path: content}; a Link is a symbolic link, a (content, mode) tuple a file with its mode.
RHEL6_PACKAGES: dict[str, dict] = {
    "upstart": {
        "/sbin/initctl": (PROGRAM, 0o755),
        "/etc/init/control-alt-delete.conf": CONTROL_ALT_DELETE_CONF,
        "/etc/init/rc.conf": RC_CONF,
    },
    "initscripts": {
        "/etc/init/tty.conf": TTY_CONF,
        "/etc/init/start-ttys.conf": START_TTYS_CONF,
        "/etc/init/serial.conf": SERIAL_CONF,
        "/etc/rc.d/rc": (
            "#!/bin/bash\n# rc  This file is responsible for starting/stopping services\n",
            0o755,
        ),
        "/etc/rc.d/rc.local": (RC_LOCAL, 0o755),
        "/etc/rc.local": Link("rc.d/rc.local"),
        "/etc/init.d": Link("rc.d/init.d"),
        "/etc/rc.d/init.d/functions": FUNCTIONS,
        "/etc/rc.d/init.d/network": (NETWORK_SCRIPT, 0o755),
        "/etc/sysconfig/init": "BOOTUP=color\nACTIVE_CONSOLES=/dev/tty[1-6]\n",
        "/sbin/securetty": (PROGRAM, 0o755),
        **{f"/etc/rc{level}.d": Link(f"rc.d/rc{level}.d") for level in "0123456"},
    },
    "cronie": {"/etc/rc.d/init.d/crond": (CROND_SCRIPT, 0o755), "/usr/sbin/crond": (PROGRAM, 0o755)},
    "mingetty": {"/sbin/mingetty": (PROGRAM, 0o755)},
    "util-linux-ng": {"/sbin/agetty": (PROGRAM, 0o755), "/sbin/shutdown": (PROGRAM, 0o755)},
    "bash": {"/bin/bash": (PROGRAM, 0o755), "/bin/sh": Link("bash")},
    "coreutils": {"/bin/touch": (PROGRAM, 0o755)},
}
# What chkconfig links (not owned by any package, as on a real system).
RHEL6_LINKS = {
    "/etc/rc.d/rc3.d/S10network": Link("../init.d/network"),
    "/etc/rc.d/rc3.d/S90crond": Link("../init.d/crond"),
    "/etc/rc.d/rc3.d/S99local": Link("../rc.local"),
    "/etc/rc.d/rc0.d/K60crond": Link("../init.d/crond"),
    "/etc/rc.d/rc0.d/K90network": Link("../init.d/network"),
    # Left behind by a package removed without chkconfig --del: it starts nothing.
    "/etc/rc.d/rc3.d/S26haldaemon": Link("../init.d/haldaemon"),
}

RHEL7_PACKAGES: dict[str, dict] = {
    "filesystem": {"/bin": Link("usr/bin"), "/sbin": Link("usr/sbin"), "/lib64": Link("usr/lib64")},
    "initscripts": {
        "/etc/rc.d/rc.local": (RC_LOCAL, 0o644),
        "/etc/rc.local": Link("rc.d/rc.local"),
        "/etc/init.d": Link("rc.d/init.d"),
        "/etc/rc.d/init.d/functions": FUNCTIONS,
        "/etc/rc.d/init.d/network": (NETWORK_SCRIPT, 0o755),
        "/etc/rc.d/init.d/netconsole": ("#!/bin/bash\n# netconsole\n. /etc/init.d/functions\n", 0o755),
        **{f"/etc/rc{level}.d": Link(f"rc.d/rc{level}.d") for level in "0123456"},
        "/usr/sbin/ifup": (PROGRAM, 0o755),
        "/usr/sbin/ifdown": (PROGRAM, 0o755),
    },
    "systemd": {"/usr/lib/systemd/system/rc-local.service": RC_LOCAL_SERVICE},
    "bash": {"/usr/bin/bash": (PROGRAM, 0o755), "/usr/bin/sh": Link("bash")},
    "coreutils": {"/usr/bin/touch": (PROGRAM, 0o755)},
}
RHEL7_LINKS = {
    "/etc/rc.d/rc3.d/S10network": Link("../init.d/network"),
    "/etc/rc.d/rc3.d/K50netconsole": Link("../init.d/netconsole"),
}


def build_packages(top: Path, packages: dict[str, dict], release: str) -> list[Path]:
    """Each package of ``packages`` built by rpmbuild under ``top``: its files, as they are given."""
    built = []
    for name, files in packages.items():
        package = Package(
            name,
            "1.0",
            f"1.el{release}",
            top / "stage" / name,
            f"{name}, as the persistence tests' Red Hat roots hold it",
        )
        for path, spec in files.items():
            if isinstance(spec, Link):
                package.add_link(path, spec.target)
            else:
                package.add_text(path, *(spec if isinstance(spec, tuple) else (spec,)))
        built.append(rpmbuild.build(package, top / "build"))
    return built


def rhel_root(root: Path, packages: list[Path], links: dict[str, Link], release: str) -> Path:
    """A root with accounts, ``packages`` installed by rpm, and the ``links`` chkconfig made."""
    plant(root, "/etc/passwd", PASSWD)
    plant(root, "/etc/group", GROUP)
    plant(root, "/etc/redhat-release", release + "\n")
    for home, uid in (("root", 0), ("home/alice", 500)):
        (root / home).mkdir(parents=True, mode=0o700)
        os.chown(root / home, uid, uid)
    rpmbuild.install(root, *packages)
    for path, link in links.items():
        plant(root, path, link)
    return root


def rpm_files(root: Path) -> set[str]:
    """Every path the packages of ``root`` list, as real rpm prints them."""
    with tempfile.TemporaryDirectory() as scratch:
        done = rpmbuild.rpm_of_copy(root, "-qal", scratch=Path(scratch))
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.splitlines())
