#!/usr/bin/env bash
# Build one busy-server root: tools/images/server-recipe.sh SUITE BASE DEST [DEB_CACHE]
# BASE is the suite's tree of tools/images/image-recipe.sh; DEST becomes a copy of it where apt-get
# installed tools/images/server-packages.txt with their recommends (as on a real server), then what
# an administrator and cloud-init leave on day one: a locale; the default user of Debian's cloud
# images, "admin", with a login key and cloud-init's sudo grant; a PHP page and a CGI script; a
# nightly backup as a local service and timer; root's crontab and a cron.d job. Nothing is started: policy-rc.d refuses every service, /proc is private to a
# pid and mount namespace that vanishes with the command, and needrestart's apt hook is suspended.
# The root is never booted: it is data for the persistence scan's false-alarm test.
# Its content, server-packages.txt and BASE's recipe hash make the root's hash
# (tools/images/build-servers.sh).
set -euo pipefail
suite=$1
base=$2
dest=$3
debs=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$base/etc/os-release" ] || { echo "no Debian tree in $base" >&2; exit 1; }

# The names of server-packages.txt for this suite.
packages=$(awk -v suite="$suite" '
  { sub(/#.*/, "") }
  /^[ \t]*$/ { next }
  {
    if (match($0, /\[[^]]*\]/) && index(" " substr($0, RSTART + 1, RLENGTH - 2) " ", " " suite " ") == 0) next
    print $1
  }' "$here/server-packages.txt" | xargs)
[ -n "$packages" ] || { echo "no packages for $suite in $here/server-packages.txt" >&2; exit 1; }

cp -a --reflink=auto "$base" "$dest"
cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$dest/usr/sbin/policy-rc.d"
chmod 755 "$dest/usr/sbin/policy-rc.d"
[ -z "$debs" ] || mkdir -p "$debs/partial"
echo "server-recipe: apt-get install $packages"
# The .debs go to the shared cache (bound on the root's apt archive directory) so a rebuild
# downloads only what changed. When the base's lists are older than the mirror (the .deb they
# name is gone), they are refreshed and the install tried once more.
# shellcheck disable=SC2016,SC2086  # expanded by the inner shell; the names split on purpose
unshare --mount --pid --fork --propagation private -- sh -c '
  dest=$1 debs=$2
  shift 2
  mount -t proc proc "$dest/proc"
  [ -z "$debs" ] || mount --bind "$debs" "$dest/var/cache/apt/archives"
  install() {
    chroot "$dest" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
      apt-get install -y -q -o Dpkg::Use-Pty=0 "$@"
  }
  install "$@" || { chroot "$dest" apt-get update -q && install "$@"; }
  echo "en_US.UTF-8 UTF-8" >>"$dest/etc/locale.gen"
  chroot "$dest" locale-gen
  chroot "$dest" useradd --create-home --shell /bin/bash --groups adm,sudo --comment "Debian" admin
  printf "%s\n" "30 2 * * * /usr/bin/docker system prune --all --force --filter until=168h >/dev/null 2>&1" |
    chroot "$dest" crontab -u root -
' sh "$dest" "$debs" $packages

install -d -m 700 "$dest/home/admin/.ssh"
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFjmtDuMZvAiDv2wmQRAQ88xjuy5twBK8ypK6K6JeseO admin@example.org" \
  >"$dest/home/admin/.ssh/authorized_keys"
chmod 600 "$dest/home/admin/.ssh/authorized_keys"
chroot "$dest" chown -R admin:admin /home/admin/.ssh
# cloud-init's users-groups module writes this for the image's default user.
printf '# Created by cloud-init v. 22.4.2 on Mon, 07 Dec 2026 07:00:00 +0000\n\n# User rules for admin\nadmin ALL=(ALL) NOPASSWD:ALL\n' \
  >"$dest/etc/sudoers.d/90-cloud-init-users"
chmod 440 "$dest/etc/sudoers.d/90-cloud-init-users"

# The site: a PHP page behind nginx and a status page in apache2's CGI directory.
cat >"$dest/var/www/html/index.php" <<'PHP'
<?php
$name = htmlspecialchars($_GET['name'] ?? 'world', ENT_QUOTES, 'UTF-8');
$db = new PDO('pgsql:host=localhost;dbname=site', 'site', getenv('SITE_DB_PASSWORD'));
$visits = $db->query('SELECT count(*) FROM visits')->fetchColumn();
echo "<h1>Hello, {$name}</h1><p>{$visits} visits</p>";
PHP
cat >"$dest/usr/lib/cgi-bin/status" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
uptime
df -h /
CGI
chmod 755 "$dest/usr/lib/cgi-bin/status"

# A nightly database backup the administrator wrote, as a service and its timer, enabled.
cat >"$dest/usr/local/sbin/backup-site" <<'BACKUP'
#!/bin/sh
set -eu
umask 077
runuser -u postgres -- pg_dumpall | gzip >/var/backups/site-$(date +%F).sql.gz
find /var/backups -name 'site-*.sql.gz' -mtime +14 -delete
BACKUP
chmod 755 "$dest/usr/local/sbin/backup-site"
cat >"$dest/etc/systemd/system/backup-site.service" <<'UNIT'
[Unit]
Description=Nightly backup of the site's database
After=postgresql.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/backup-site
UNIT
cat >"$dest/etc/systemd/system/backup-site.timer" <<'UNIT'
[Unit]
Description=Nightly backup of the site's database

[Timer]
OnCalendar=*-*-* 01:15:00
Persistent=true

[Install]
WantedBy=timers.target
UNIT
mkdir -p "$dest/etc/systemd/system/timers.target.wants"
ln -s /etc/systemd/system/backup-site.timer "$dest/etc/systemd/system/timers.target.wants/backup-site.timer"
printf '# Rotate the site'"'"'s upload cache.\n0 4 * * * www-data find /var/www/cache -type f -mtime +7 -delete\n' \
  >"$dest/etc/cron.d/site-cache"

rm -f "$dest/usr/sbin/policy-rc.d" "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin
: >"$dest/etc/resolv.conf"
echo "server-$suite" >"$dest/etc/hostname"

# The services a busy server runs must all be installed; a package that lost its daemon fails here.
# shellcheck disable=SC2016  # expanded by the shell in the root
missing=$(chroot "$dest" /bin/sh -c '
  for c in sshd sudo cron rsyslogd logrotate nginx apache2 php-fpm* NetworkManager dockerd containerd runc \
    git curl vim chronyd auditd fail2ban-server postfix sar unattended-upgrade needrestart locale-gen; do
    command -v "$c" >/dev/null 2>&1 || ls /usr/sbin/$c >/dev/null 2>&1 || printf "%s " "$c"
  done
  ls -d /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || printf "postgres "
  [ -d /usr/lib/cgi-bin ] || printf "/usr/lib/cgi-bin "
  ls -d /var/lib/postgresql/*/main >/dev/null 2>&1 || printf "a-postgresql-cluster "')
[ -z "$missing" ] || { echo "the $suite server root lacks: $missing" >&2; exit 1; }
echo "server-recipe: $suite server root complete in $dest"
