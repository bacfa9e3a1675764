#!/bin/sh
# Break a Debian root's cron the way incident 4 broke a cluster's (the root is a disposable copy,
# or a disposable container's own /).
#   roles/drill/files/cron.sh ROOT FAULT...
# FAULT (several may be given; each adds to what the earlier ones left):
#   crontab_nul_blocks    blocks of NUL bytes in the middle of /etc/crontab, as a concurrent writer
#                         leaves them: a block that is a line of its own, a block glued to the start
#                         of a valid line, a run splitting a new every-minute job (its proof file is
#                         /var/tmp/lifeline-minute.log) and a run overwriting the start of a line;
#                         removing the NULs restores the first three lines whole, not the fourth
#   crontab_bad_minute    a line cron rejects with "bad minute"
#   crontab_malware_job   a */3 job in /etc/crontab running a hidden file, /usr/bin/.sysupdate,
#                         which it creates (harmless: it only appends to /var/tmp/.sysupdate-ran)
#   startup_item_malware  an /etc/rc.local line and a systemd unit (with its multi-user.target.wants
#                         link) starting that hidden file
# With CRON_FAULT_RECORD=DIR the planter also writes down what it did, for checks that must not
# trust the code under test:
#   DIR/crontab.valid     the lines /etc/crontab must keep byte for byte and in this order
#   DIR/crontab.invalid   the lines (NULs removed) that stay invalid and must come back commented
#   DIR/malware           what the malware planted: "job LINE", "rc.local LINE", "unit PATH",
#                         "link PATH", "payload PATH" (paths inside the root)
#   DIR/oracle/NAME       single crontab lines for cron to judge, one file each, and
#   DIR/oracle.expect     "NAME VERDICT": what cron says of each ("ok" or its error words)
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOT FAULT..." >&2; exit 2; }
root=${1%/}
shift
[ -d "$root/etc" ] || { echo "$root/etc is not a directory: not a root" >&2; exit 2; }
crontab=$root/etc/crontab
record=${CRON_FAULT_RECORD:-}
payload=/usr/bin/.sysupdate
minute_job='* * * * * root date >> /var/tmp/lifeline-minute.log'
malware_job="*/3 * * * * root $payload"

# nuls COUNT: that many NUL bytes on stdout (shell variables cannot hold them).
nuls() {
  head -c "$1" /dev/zero
}

# note FILE TEXT: add a line to a record file (nothing without CRON_FAULT_RECORD).
note() {
  [ -n "$record" ] || return 0
  mkdir -p "$record"
  printf '%s\n' "$2" >>"$record/$1"
}

# oracle NAME VERDICT: one line (stdin, with its newline) for cron to judge, and what cron says of it.
oracle() {
  if [ -z "$record" ]; then
    cat >/dev/null
    return 0
  fi
  mkdir -p "$record/oracle"
  cat >"$record/oracle/$1"
  note oracle.expect "$1 $2"
}

# The lines already in /etc/crontab are the host's own jobs: all of them must survive. Recorded
# once, before the first fault touches the file (a file that already holds NULs is not pristine).
seed_record() {
  [ -n "$record" ] || return 0
  [ ! -e "$record/crontab.valid" ] || return 0
  mkdir -p "$record"
  if [ -f "$crontab" ]; then
    if [ "$(tr -d '\000' <"$crontab" | wc -c)" -ne "$(wc -c <"$crontab")" ]; then
      echo "$crontab already holds NUL bytes: plant into a pristine root" >&2
      exit 2
    fi
    cp "$crontab" "$record/crontab.valid"
  else
    : >"$record/crontab.valid"
  fi
}

# Whatever the file looks like, the next line a fault appends starts on a line of its own.
end_with_newline() {
  if [ ! -e "$crontab" ]; then
    : >"$crontab"
    chmod 0644 "$crontab"
  elif [ -s "$crontab" ] && [ "$(tail -c 1 "$crontab" | od -An -c | tr -d ' ')" != '\n' ]; then
    printf '\n' >>"$crontab"
  fi
}

# The hidden file the malware's job and startup items run.
plant_payload() {
  [ -e "$root$payload" ] && return 0
  mkdir -p "$(dirname "$root$payload")"
  cat >"$root$payload" <<'EOF'
#!/bin/sh
# Stands in for a miner: it only leaves a mark that it ran.
date >>/var/tmp/.sysupdate-ran
EOF
  chmod 0755 "$root$payload"
  note malware "payload $payload"
}

crontab_nul_blocks() {
  seed_record
  end_with_newline
  work=$(mktemp)
  # In place (cat > FILE), as the writers left it: same inode, owner and mode. A NUL block of a
  # page after the PATH line; a smaller one glued to the start of the daily job's line.
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      *cron.daily*) nuls 1536 ;;
    esac
    printf '%s\n' "$line"
    case $line in
      PATH=*)
        nuls 4096
        printf '\n'
        ;;
    esac
  done <"$crontab" >"$work"
  {
    # The every-minute job, its user field split by a run: cron says "bad username".
    printf '%s' "${minute_job%%root*}ro"
    nuls 700
    printf 'ot%s\n' "${minute_job#*root}"
    # A job whose first bytes ("15 3 *") were overwritten: without the NULs it is still invalid.
    nuls 6
    printf ' * * root /usr/local/sbin/storage-scrub --quick\n'
  } >>"$work"
  cat "$work" >"$crontab"
  rm -f "$work"
  note crontab.valid "$minute_job"
  note crontab.invalid ' * * root /usr/local/sbin/storage-scrub --quick'
  { nuls 4096; printf '\n'; } | oracle nul_line "bad minute"
  { nuls 1536; grep -m 1 cron.daily "$record/crontab.valid" 2>/dev/null || printf '25 6 * * * root true\n'; } |
    oracle daily_glued "bad minute"
  { printf '* * * * * ro'; nuls 700; printf 'ot date >> /var/tmp/lifeline-minute.log\n'; } |
    oracle minute_split "bad username"
  printf '%s\n' "$minute_job" | oracle minute_unsplit ok
  { nuls 6; printf ' * * root /usr/local/sbin/storage-scrub --quick\n'; } | oracle scrub_overwritten "bad minute"
  printf ' * * root /usr/local/sbin/storage-scrub --quick\n' | oracle scrub_without_nuls "bad day-of-month"
}

crontab_bad_minute() {
  seed_record
  end_with_newline
  line='61 2 * * * root /usr/local/sbin/storage-report'
  printf '%s\n' "$line" >>"$crontab"
  note crontab.invalid "$line"
  printf '%s\n' "$line" | oracle bad_minute "bad minute"
}

crontab_malware_job() {
  seed_record
  end_with_newline
  plant_payload
  printf '%s\n' "$malware_job" >>"$crontab"
  note crontab.valid "$malware_job"
  note malware "job $malware_job"
  printf '%s\n' "$malware_job" | oracle malware_job ok
}

startup_item_malware() {
  plant_payload
  rc=$root/etc/rc.local
  line="$payload &"
  if [ -f "$rc" ] && grep -q '^exit 0' "$rc"; then
    # Before the script's final "exit 0", where such lines usually hide.
    work=$(mktemp)
    awk -v add="$line" '/^exit 0/ && !done { print add; done = 1 } { print }' "$rc" >"$work"
    cat "$work" >"$rc"
    rm -f "$work"
  else
    [ -f "$rc" ] || printf '#!/bin/sh -e\n' >"$rc"
    printf '%s\nexit 0\n' "$line" >>"$rc"
  fi
  chmod 0755 "$rc"
  note malware "rc.local $line"

  unit=/etc/systemd/system/sysupdate.service
  link=/etc/systemd/system/multi-user.target.wants/sysupdate.service
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  cat >"$root$unit" <<EOF
[Unit]
Description=System update helper
After=network.target

[Service]
Type=forking
ExecStart=$payload

[Install]
WantedBy=multi-user.target
EOF
  chmod 0644 "$root$unit"
  ln -sfn "$unit" "$root$link"
  note malware "unit $unit"
  note malware "link $link"
}

for fault in "$@"; do
  case $fault in
    crontab_nul_blocks | crontab_bad_minute | crontab_malware_job | startup_item_malware) "$fault" ;;
    *)
      echo "unknown fault $fault" >&2
      exit 2
      ;;
  esac
  echo "planted $fault in $root"
done
