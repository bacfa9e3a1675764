#!/bin/bash
# The repair_crontab scenario's own checks: Debian's cron and rsyslog, run in the target (its own
# programs, in a chroot when the target is a directory), and plain listings; no lifeline code.
#   oracle listing ROOT          type, mode, owner, size, mtime, ctime, link text and sha256 of
#                                everything the repair or the persistence scan may touch
#   oracle unchanged ROOT FILE   the listing of ROOT is still the one kept in FILE (else: the diff)
#   oracle nuls FILE             how many NUL bytes FILE holds
#   oracle start ROOT            start the root's rsyslogd and cron; returns once cron has read its
#                                crontabs (its STARTUP line is in the root's /var/log/syslog)
#   oracle stop ROOT             stop them
#   oracle mark ROOT TEXT        log TEXT through the root's syslog and wait until it is written
#   oracle since ROOT TEXT       the syslog lines after the last mark holding TEXT
#   oracle wait-run ROOT FILE SECONDS
#                                wait until the job writing FILE (a path inside ROOT) has run:
#                                FILE grows; prints its sizes and the cron log line of the run
#   oracle kept FILE EXPECTED [SKIP]
#                                every line of EXPECTED (but SKIP) is a line of FILE, byte for byte
#                                and in the same order; prints those that are not
#   oracle judge DIR             cron's verdict on each single-line crontab in DIR (one file a
#                                line): each becomes a file of this host's /etc/cron.d, cron is
#                                started, and what it logs for each file is printed as
#                                "NAME VERDICT" ("ok" or cron's error words); the files are removed
set -euo pipefail

# run_in ROOT COMMAND...: run a program of ROOT (chroot unless ROOT is this host's /).
run_in() {
  local root=$1
  shift
  if [ "$root" = / ]; then "$@"; else chroot "$root" "$@"; fi
}

syslog() {
  local log=${1%/}/var/log/syslog
  if [ -f "$log" ]; then cat "$log"; fi
}

# running PID: the process runs (a container's init may never reap it: a zombie has ended).
running() {
  [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]
}

# alive ROOT NAME: the daemon whose pid file is ROOT/run/NAME.pid runs.
alive() {
  local pidfile=${1%/}/run/$2.pid
  [ -s "$pidfile" ] && running "$(cat "$pidfile")"
}

listing() {
  local root=${1%/} path
  cd "$root"
  for path in etc/crontab etc/cron.d etc/cron.hourly etc/cron.daily etc/cron.weekly etc/cron.monthly \
    etc/anacrontab etc/rc.local etc/init.d etc/systemd/system etc/profile.d etc/ld.so.preload \
    etc/udev/rules.d etc/xdg/autostart root/.ssh var/spool/cron usr/bin/.sysupdate \
    var/backups/lifeline var/lib/lifeline; do
    if [ -e "$path" ] || [ -L "$path" ]; then
      find "$path" -printf '%p %y %m %U:%G %s %T@ %C@ %l\n' | sort
      find "$path" -type f -print0 | sort -z | xargs -0 -r sha256sum
    else
      echo "$path absent"
    fi
  done
}

unchanged() {
  listing "$1" | diff -u "$2" -
}

nuls() {
  tr -cd '\000' <"$1" | wc -c
}

mark() {
  local root=$1 text=$2
  run_in "$root" logger -t lifeline-oracle "$text"
  for _ in $(seq 50); do
    syslog "$root" | grep -qF -- "lifeline-oracle: $text" && return 0
    sleep 0.2
  done
  echo "the mark '$text' did not reach $root/var/log/syslog" >&2
  exit 1
}

since() {
  local root=$1 text=$2
  # Only the mark itself: Ansible logs its module arguments (this command's too) on the target.
  syslog "$root" | awk -v mark="lifeline-oracle: $text" 'index($0, mark) { n = NR; delete kept; next } n { kept[NR] = $0 }
    END { if (!n) exit 1; for (i = n + 1; i <= NR; i++) print kept[i] }'
}

syslogd_up() {
  # Without /proc/kmsg in a container rsyslogd says it cannot log the kernel's messages: noise.
  alive "$1" rsyslogd || run_in "$1" /usr/sbin/rsyslogd 2>/dev/null
}

start() {
  local root=$1 stamp
  syslogd_up "$root"
  if alive "$root" crond; then
    echo "cron already runs in $root" >&2
    exit 1
  fi
  stamp="cron start $(date +%s.%N)"
  mark "$root" "$stamp"
  run_in "$root" /usr/sbin/cron
  # cron reads /etc/crontab, /etc/cron.d and the spool as it starts, then looks at @reboot jobs.
  for _ in $(seq 50); do
    since "$root" "$stamp" | grep -q 'cron\[[0-9]*\]: (CRON) INFO (.*@reboot jobs' && return 0
    sleep 0.2
  done
  echo "cron did not start in $root" >&2
  syslog "$root" | tail -n 20 >&2
  exit 1
}

# stop ROOT [NAME...]: stop cron and rsyslogd (or the daemons of these pid files).
stop() {
  local root=$1 name pid
  shift
  [ $# -gt 0 ] || set -- crond rsyslogd
  for name in "$@"; do
    alive "$root" "$name" || continue
    pid=$(cat "${root%/}/run/$name.pid")
    kill "$pid"
    for _ in $(seq 50); do
      running "$pid" || break
      sleep 0.1
    done
    rm -f "${root%/}/run/$name.pid"
  done
}

size_of() {
  if [ -f "$1" ]; then stat -c %s "$1"; else echo 0; fi
}

wait_run() {
  local root=${1%/} file=$2 seconds=$3 before now start=$SECONDS
  before=$(size_of "$root$file")
  while [ $((SECONDS - start)) -lt "$seconds" ]; do
    now=$(size_of "$root$file")
    if [ "$now" -gt "$before" ]; then
      echo "$file grew from $before to $now bytes after $((SECONDS - start)) s"
      syslog "$root" | grep -F "CMD (" | grep -F "$file" | tail -n 1
      return 0
    fi
    sleep 1
  done
  echo "$file did not grow in $seconds s (still $before bytes); the end of the syslog:" >&2
  syslog "$root" | tail -n 20 >&2
  exit 1
}

kept() {
  awk -v skip="${3:-}" '
    NR == FNR { if (skip == "" || $0 != skip) want[++n] = $0; next }
    i < n && $0 == want[i + 1] { i++ }
    END {
      for (j = i + 1; j <= n; j++) print "missing or out of order: " want[j]
      if (i < n) exit 1
      print n " lines kept byte for byte and in order"
    }' "$2" "$1"
}

judge() {
  local dir=$1 file name stamp verdict
  stop / crond
  for file in "$dir"/*; do
    install -m 0644 -o root -g root "$file" "/etc/cron.d/lifeline-oracle-$(basename "$file")"
  done
  stamp="judge $(date +%s.%N)"
  syslogd_up /
  mark / "$stamp"
  start /
  stop / crond
  rm -f /etc/cron.d/lifeline-oracle-*
  for file in "$dir"/*; do
    name=$(basename "$file")
    verdict=$(since / "$stamp" | sed -n "s|.*Error: \(.*\); while reading /etc/cron.d/lifeline-oracle-$name\$|\1|p")
    echo "$name ${verdict:-ok}"
  done
}

command=${1:-}
[ $# -gt 0 ] && shift
case $command in
  listing) listing "$1" ;;
  unchanged) unchanged "$1" "$2" ;;
  nuls) nuls "$1" ;;
  start) start "$1" ;;
  stop) stop "$1" ;;
  mark) mark "$1" "$2" ;;
  since) since "$1" "$2" ;;
  wait-run) wait_run "$1" "$2" "$3" ;;
  kept) kept "$@" ;;
  judge) judge "$1" ;;
  *)
    echo "usage: oracle listing|unchanged|nuls|start|stop|mark|since|wait-run|kept|judge ..." >&2
    exit 2
    ;;
esac
