#!/bin/sh
# Plant persistence that rides on logins and on the tools people use, the way intrusions plant it,
# into a Debian root (a disposable copy, or a disposable container's own /).
#   roles/drill/files/logins.sh ROOT MECHANISM...
# MECHANISM (several may be given):
#   root_key            an ssh key appended to root's authorized_keys
#   user_key            an ssh key for a user account (one with uid 1000 or above; made if none)
#   system_account_key  a key for the system account news, whose nologin shell is swapped for a copy
#                       of dash named "/usr/sbin/nologin " (a trailing blank), listed in /etc/shells
#   key_environment     a user's key with environment="LD_PRELOAD=<a hidden library>"
#   key_command         a root key with command="<a hidden program>"
#   keys_file_odd       sshd reads keys from /var/tmp/.lifeline-keys/%u too (sshd_config.d), and one is there
#   keys_command        sshd asks a hidden program for keys (AuthorizedKeysCommand, sshd_config.d)
#   ssh_rc              /root/.ssh/rc, run by sshd at every login, starting a hidden program
#   sshrc               /etc/ssh/sshrc
#   rhosts              "+ +" in /root/.rhosts
#   hosts_equiv         a trusted host in /etc/hosts.equiv
#   git_hook            an executable pre-commit hook in a repository under /srv
#   git_pager           core.pager in root's ~/.gitconfig starting a hidden program
#   git_hooks_path      core.hooksPath in root's ~/.gitconfig naming a hidden directory of hooks
#   bash_logout         a line in root's ~/.bash_logout starting a hidden program
#   kde_autostart       a script in root's ~/.config/autostart-scripts starting a hidden program
#   systemd_dropin      a drop-in replacing cron.service's ExecStart= with a hidden program
#   systemd_socket      an enabled socket unit (Accept=yes) whose service template runs a hidden program
#   systemd_path        an enabled path unit whose service runs a hidden program
#   systemd_user_unit   a user unit in /etc/systemd/user, enabled for every user, running a hidden program
#   systemd_unit_plain  an enabled unit running an unpackaged program under /usr/local/sbin
# Every program planted only leaves a mark that it ran: /var/tmp/lifeline-planted-MECHANISM.
# With PLANT_RECORD=DIR, "MECHANISM PATH" is appended to DIR/planted for every path (inside the
# root) created or changed.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOT MECHANISM..." >&2; exit 2; }
root=${1%/}
shift
[ -d "$root/etc" ] || { echo "$root/etc is not a directory: not a root" >&2; exit 2; }
record=${PLANT_RECORD:-}
key_body='AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'

# planted MECHANISM PATH: write down a path created or changed (nothing without PLANT_RECORD).
planted() {
  [ -n "$record" ] || return 0
  mkdir -p "$record"
  printf '%s %s\n' "$1" "$2" >>"$record/planted"
}

# write MECHANISM PATH MODE: stdin appended to PATH inside the root (made with MODE if new).
write() {
  mkdir -p "$(dirname "$root$2")"
  [ -e "$root$2" ] || { : >"$root$2"; chmod "$3" "$root$2"; }
  cat >>"$root$2"
  planted "$1" "$2"
}

# payload MECHANISM PATH: the harmless program a mechanism starts.
payload() {
  printf '#!/bin/sh\ndate >>/var/tmp/lifeline-planted-%s\n' "$1" | write "$1" "$2" 0755
}

# key COMMENT: a public key line.
key() {
  printf 'ssh-ed25519 %s %s\n' "$key_body" "$1"
}

# field NAME N: field N of NAME's line in /etc/passwd.
field() {
  awk -F: -v name="$1" -v n="$2" '$1 == name { print $n; exit }' "$root/etc/passwd"
}

# A user account to give a key to: the first with a uid of 1000 or more, else a new one.
user_account() {
  found=$(awk -F: '$3 >= 1000 && $3 < 60000 && $6 ~ /^\// { print $1; exit }' "$root/etc/passwd")
  if [ -n "$found" ]; then
    printf '%s\n' "$found"
    return 0
  fi
  mechanism=$1
  printf 'lifeline:x:1000:1000:lifeline drill:/home/lifeline:/bin/bash\n' | write "$mechanism" /etc/passwd 0644
  printf 'lifeline:x:1000:\n' | write "$mechanism" /etc/group 0644
  if [ -f "$root/etc/shadow" ]; then
    printf 'lifeline:!:19000:0:99999:7:::\n' | write "$mechanism" /etc/shadow 0640
  fi
  mkdir -p "$root/home/lifeline"
  chown 1000:1000 "$root/home/lifeline"
  chmod 0750 "$root/home/lifeline"
  planted "$mechanism" /home/lifeline
  printf 'lifeline\n'
}

# authorized MECHANISM USER: stdin appended to USER's authorized_keys (ssh makes them 0700/0600).
authorized() {
  home=$(field "$2" 6)
  uid=$(field "$2" 3)
  gid=$(field "$2" 4)
  if [ ! -d "$root$home/.ssh" ]; then
    mkdir -p "$root$home/.ssh"
    chmod 0700 "$root$home/.ssh"
    chown "$uid:$gid" "$root$home/.ssh"
    planted "$1" "$home/.ssh"
  fi
  write "$1" "$home/.ssh/authorized_keys" 0600
  chown "$uid:$gid" "$root$home/.ssh/authorized_keys"
}

# sshd_setting MECHANISM LINE: a line in a drop-in of sshd's config (and the Include that reads it).
sshd_setting() {
  if [ ! -e "$root/etc/ssh/sshd_config" ]; then
    printf 'Include /etc/ssh/sshd_config.d/*.conf\n' | write "$1" /etc/ssh/sshd_config 0644
  fi
  printf '%s\n' "$2" | write "$1" /etc/ssh/sshd_config.d/lifeline.conf 0644
}

# unit MECHANISM PATH: stdin as a unit file.
unit() {
  write "$1" "$2" 0644
}

# enable_unit MECHANISM UNIT WANTS_DIR: the link systemctl enable makes.
enable_unit() {
  mkdir -p "$root$3"
  ln -s "$2" "$root$3/$(basename "$2")"
  planted "$1" "$3/$(basename "$2")"
}

# A packaged unit to override: the first of these the root has.
packaged_unit() {
  for name in cron.service ssh.service rsyslog.service systemd-journald.service; do
    for dir in /usr/lib/systemd/system /lib/systemd/system; do
      [ -f "$root$dir/$name" ] && { printf '%s\n' "$name"; return 0; }
    done
  done
  echo "no packaged unit to override (cron, ssh, rsyslog, journald) in $root" >&2
  exit 2
}

plant_one() {
  m=$1
  hidden=/usr/local/bin/.lifeline-$m
  case $m in
    root_key)
      key "admin@workstation" | authorized "$m" root
      ;;
    user_key)
      user=$(user_account "$m")
      key "deploy@ci" | authorized "$m" "$user"
      ;;
    system_account_key)
      home=$(field news 6)
      [ -n "$home" ] || { echo "no news account in $root/etc/passwd" >&2; exit 2; }
      # World-readable, as the toolkit leaves them.
      mkdir -p "$root$home/.ssh"
      chmod 0755 "$root$home/.ssh"
      planted "$m" "$home/.ssh"
      key "news@backup" | write "$m" "$home/.ssh/authorized_keys" 0644
      cp "$root/bin/dash" "$root/usr/sbin/nologin "
      planted "$m" "/usr/sbin/nologin "
      printf 'nologin \n' | write "$m" /etc/shells 0644
      sed -i 's|^\(news:.*\):/usr/sbin/nologin$|\1:/usr/sbin/nologin |' "$root/etc/passwd"
      planted "$m" /etc/passwd
      ;;
    key_environment)
      user=$(user_account "$m")
      printf '# stands in for a preloaded library; not an ELF file, so nothing loads it\n' |
        write "$m" /usr/local/lib/.lifeline-key_environment.so 0644
      printf 'environment="LD_PRELOAD=/usr/local/lib/.lifeline-key_environment.so" %s\n' "$(key "$user@laptop")" |
        authorized "$m" "$user"
      ;;
    key_command)
      payload "$m" "$hidden"
      printf 'command="%s",no-pty,no-port-forwarding %s\n' "$hidden" "$(key backup@vault)" | authorized "$m" root
      ;;
    keys_file_odd)
      sshd_setting "$m" "AuthorizedKeysFile .ssh/authorized_keys /var/tmp/.lifeline-keys/%u"
      key "odd@place" | write "$m" /var/tmp/.lifeline-keys/root 0600
      planted "$m" /var/tmp/.lifeline-keys
      ;;
    keys_command)
      payload "$m" "$hidden"
      sshd_setting "$m" "AuthorizedKeysCommand $hidden %u"
      sshd_setting "$m" "AuthorizedKeysCommandUser nobody"
      ;;
    ssh_rc)
      payload "$m" "$hidden"
      [ -d "$root/root/.ssh" ] || { mkdir -p "$root/root/.ssh"; chmod 0700 "$root/root/.ssh"; planted "$m" /root/.ssh; }
      printf '%s &\n' "$hidden" | write "$m" /root/.ssh/rc 0644
      ;;
    sshrc)
      printf 'date >>/var/tmp/lifeline-planted-sshrc\n' | write "$m" /etc/ssh/sshrc 0644
      ;;
    rhosts)
      printf '+ +\n' | write "$m" /root/.rhosts 0600
      ;;
    hosts_equiv)
      printf 'trusted.example.org\n' | write "$m" /etc/hosts.equiv 0644
      ;;
    git_hook)
      repo=/srv/lifeline-app
      for dir in "$repo" "$repo/.git" "$repo/.git/hooks" "$repo/.git/objects" "$repo/.git/refs"; do
        [ -d "$root$dir" ] || { mkdir -p "$root$dir"; planted "$m" "$dir"; }
      done
      printf 'ref: refs/heads/main\n' | write "$m" "$repo/.git/HEAD" 0644
      printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n' | write "$m" "$repo/.git/config" 0644
      printf '#!/bin/sh\n# what git ships: never run\nexit 0\n' | write "$m" "$repo/.git/hooks/pre-commit.sample" 0755
      printf '#!/bin/sh\ndate >>/var/tmp/lifeline-planted-git_hook\n' | write "$m" "$repo/.git/hooks/pre-commit" 0755
      ;;
    git_pager)
      payload "$m" "$hidden"
      # shellcheck disable=SC2016 # ${PAGER:-less} is for the shell git starts, not this one
      printf '[core]\n\tpager = "%s; ${PAGER:-less}"\n' "$hidden" | write "$m" /root/.gitconfig 0644
      ;;
    git_hooks_path)
      hooks=/usr/local/share/.lifeline-hooks
      printf '#!/bin/sh\ndate >>/var/tmp/lifeline-planted-git_hooks_path\n' | write "$m" "$hooks/post-checkout" 0755
      planted "$m" "$hooks"
      printf '[core]\n\thooksPath = %s\n' "$hooks" | write "$m" /root/.gitconfig 0644
      ;;
    bash_logout)
      payload "$m" "$hidden"
      printf '%s >/dev/null 2>&1 &\n' "$hidden" | write "$m" /root/.bash_logout 0644
      ;;
    kde_autostart)
      payload "$m" "$hidden"
      printf '#!/bin/sh\n%s &\n' "$hidden" | write "$m" /root/.config/autostart-scripts/update-notifier.sh 0755
      ;;
    systemd_dropin)
      payload "$m" "$hidden"
      name=$(packaged_unit)
      printf '[Service]\nExecStart=\nExecStart=%s\n' "$hidden" |
        unit "$m" "/etc/systemd/system/$name.d/override.conf"
      planted "$m" "/etc/systemd/system/$name.d"
      ;;
    systemd_socket)
      payload "$m" "$hidden"
      printf '[Socket]\nListenStream=/run/lifeline-helper.sock\nAccept=yes\n\n[Install]\nWantedBy=sockets.target\n' |
        unit "$m" /etc/systemd/system/lifeline-helper.socket
      printf '[Service]\nExecStart=%s\nStandardInput=socket\n' "$hidden" |
        unit "$m" /etc/systemd/system/lifeline-helper@.service
      enable_unit "$m" /etc/systemd/system/lifeline-helper.socket /etc/systemd/system/sockets.target.wants
      ;;
    systemd_path)
      payload "$m" "$hidden"
      printf '[Path]\nPathExists=/var/tmp/lifeline-trigger\nUnit=lifeline-watch.service\n\n[Install]\nWantedBy=multi-user.target\n' |
        unit "$m" /etc/systemd/system/lifeline-watch.path
      printf '[Service]\nType=oneshot\nExecStart=%s\n' "$hidden" | unit "$m" /etc/systemd/system/lifeline-watch.service
      enable_unit "$m" /etc/systemd/system/lifeline-watch.path /etc/systemd/system/multi-user.target.wants
      ;;
    systemd_user_unit)
      payload "$m" "$hidden"
      printf '[Service]\nExecStart=%s\n\n[Install]\nWantedBy=default.target\n' "$hidden" |
        unit "$m" /etc/systemd/user/lifeline-agent.service
      enable_unit "$m" /etc/systemd/user/lifeline-agent.service /etc/systemd/user/default.target.wants
      ;;
    systemd_unit_plain)
      payload "$m" /usr/local/sbin/lifeline-inventory
      printf '[Service]\nExecStart=/usr/local/sbin/lifeline-inventory\n\n[Install]\nWantedBy=multi-user.target\n' |
        unit "$m" /etc/systemd/system/lifeline-inventory.service
      enable_unit "$m" /etc/systemd/system/lifeline-inventory.service /etc/systemd/system/multi-user.target.wants
      ;;
    *)
      echo "unknown mechanism $m" >&2
      exit 2
      ;;
  esac
}

for mechanism in "$@"; do
  plant_one "$mechanism"
done
