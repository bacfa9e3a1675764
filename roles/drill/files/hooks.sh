#!/bin/sh
# Plant persistence in the programs system components run as root by themselves (login, apt, PAM,
# the boot loader, the initramfs, the network), the way intrusions plant it, into a disposable root.
#   roles/drill/files/hooks.sh ROOT MECHANISM...
# MECHANISM (several may be given):
#   motd             /etc/update-motd.d/137-python-upgrades, run by pam_motd at every login
#   apt_hook         /etc/apt/apt.conf.d/01python-upgrades: an APT::Update::Pre-Invoke one-liner
#                    that detaches a shell (apt-daily runs it twice a day)
#   apt_hook_block   /etc/apt/apt.conf.d/99dpkg-refresh: DPkg::Post-Invoke in nested blocks with
#                    comments, running a dropped script /usr/local/sbin/dpkg-refresh
#   dpkg_hook        /etc/dpkg/dpkg.cfg.d/lifeline-log: a dpkg post-invoke= command
#   yum_plugin       /usr/lib/yum-plugins/yumcon.py enabled by /etc/yum/pluginconf.d/yumcon.conf
#   dnf_plugin       python3.X/site-packages/dnf-plugins/dnfcon.py and /etc/dnf/plugins/dnfcon.conf
#   pam_exec         a pam_exec line in /etc/pam.d/common-auth handing the password
#                    (expose_authtok) to a dropped /usr/local/bin/pam-audit
#   pam_module       a copy of pam_permit.so as pam_sysaudit.so, "auth sufficient" at the top of
#                    /etc/pam.d/common-auth: any password logs in
#   pam_permit       "auth sufficient pam_permit.so" at the top of /etc/pam.d/su
#   grub_init        /etc/default/grub.d/99-lifeline.cfg adding init=/grub-lifeline.sh (which would
#                    start the real init after its payload) and the grub.cfg update-grub would write
#   grub_script      /etc/grub.d/07_lifeline, run by update-grub
#   initramfs_hook   an initramfs-tools hook and an init-bottom boot script
#   dracut_module    /usr/lib/dracut/modules.d/99lifeline (module-setup.sh and the hook it installs)
#                    and /etc/dracut.conf.d/99-lifeline.conf adding it
#   nm_dispatcher    /etc/NetworkManager/dispatcher.d/99-lifeline
#   ifupdown_hook    /etc/network/if-up.d/lifeline
#   dhclient_hook    /etc/dhcp/dhclient-exit-hooks.d/lifeline (sourced by dhclient-script)
# Every payload only writes /var/tmp/lifeline-planted-MECHANISM; nothing planted is ever run here.
# With PLANT_RECORD=DIR each path created or changed (inside the root) is appended to DIR/planted
# as "MECHANISM PATH".
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOT MECHANISM..." >&2; exit 2; }
root=${1%/}
shift
[ -d "$root/etc" ] || { echo "$root/etc is not a directory: not a root" >&2; exit 2; }
record=${PLANT_RECORD:-}

# planted MECHANISM PATH: note a path (inside the root) the mechanism created or changed.
planted() {
  [ -n "$record" ] || return 0
  mkdir -p "$record"
  printf '%s %s\n' "$1" "$2" >>"$record/planted"
}

# directory MECHANISM PATH: create a directory (and its missing parents), noting each one created.
directory() {
  [ -d "$root$2" ] && return 0
  directory "$1" "$(dirname "$2")"
  mkdir -m 0755 "$root$2"
  planted "$1" "$2"
}

# put MECHANISM PATH MODE: write stdin to a file of the root, noting it.
put() {
  directory "$1" "$(dirname "$2")"
  cat >"$root$2"
  chmod "$3" "$root$2"
  planted "$1" "$2"
}

# prepend MECHANISM PATH LINE: put a line first in an existing file, keeping the rest byte for byte.
prepend() {
  [ -f "$root$2" ] || { echo "$root$2 is missing: cannot plant $1" >&2; exit 2; }
  { printf '%s\n' "$3"; cat "$root$2"; } >"$root$2.lifeline-new"
  chmod --reference="$root$2" "$root$2.lifeline-new"
  mv "$root$2.lifeline-new" "$root$2"
  planted "$1" "$2"
}

# marker_script MECHANISM: a shell script whose only effect is the marker file.
marker_script() {
  printf '#!/bin/sh\necho planted >/var/tmp/lifeline-planted-%s\n' "$1"
}

security_dir() {
  for dir in /usr/lib/x86_64-linux-gnu/security /lib/x86_64-linux-gnu/security /usr/lib64/security \
    /lib64/security /lib/security; do
    if [ -f "$root$dir/pam_permit.so" ]; then
      echo "$dir"
      return 0
    fi
  done
  echo "no pam_permit.so in the root's security directories" >&2
  exit 2
}

plant() {
  case $1 in
  motd)
    marker_script motd | put motd /etc/update-motd.d/137-python-upgrades 0755
    ;;
  apt_hook)
    printf '%s\n' "APT::Update::Pre-Invoke {\"(nohup setsid /bin/sh -c 'echo planted >/var/tmp/lifeline-planted-apt_hook' > /dev/null 2>&1 &) &\"};" |
      put apt_hook /etc/apt/apt.conf.d/01python-upgrades 0644
    ;;
  apt_hook_block)
    marker_script apt_hook_block | put apt_hook_block /usr/local/sbin/dpkg-refresh 0755
    put apt_hook_block /etc/apt/apt.conf.d/99dpkg-refresh 0644 <<'EOF'
// Refresh the package state after every dpkg run.
/* kept short:
   one hook */
DPkg
{
  Post-Invoke
  {
    "/usr/local/sbin/dpkg-refresh || true";  # never fail dpkg
  };
};
EOF
    ;;
  dpkg_hook)
    printf '%s\n' "# log every run" "post-invoke=/bin/sh -c 'echo planted >/var/tmp/lifeline-planted-dpkg_hook'" |
      put dpkg_hook /etc/dpkg/dpkg.cfg.d/lifeline-log 0644
    ;;
  yum_plugin)
    printf '[main]\nenabled=1\n' | put yum_plugin /etc/yum/pluginconf.d/yumcon.conf 0644
    put yum_plugin /usr/lib/yum-plugins/yumcon.py 0644 <<'EOF'
from yum.plugins import TYPE_CORE

requires_api_version = "2.0"
plugin_type = (TYPE_CORE,)


def init_hook(conduit):
    with open("/var/tmp/lifeline-planted-yum_plugin", "w") as marker:
        marker.write("planted\n")
EOF
    ;;
  dnf_plugin)
    python=python3.11
    for dir in "$root"/usr/lib/python3.*; do
      case ${dir##*/} in
      python3.[0-9] | python3.[0-9][0-9]) python=${dir##*/} ;;
      esac
    done
    printf '[main]\nenabled=1\n' | put dnf_plugin /etc/dnf/plugins/dnfcon.conf 0644
    put dnf_plugin "/usr/lib/$python/site-packages/dnf-plugins/dnfcon.py" 0644 <<'EOF'
import dnf


class MarkerPlugin(dnf.Plugin):
    name = "dnfcon"

    def __init__(self, base, cli):
        super().__init__(base, cli)
        with open("/var/tmp/lifeline-planted-dnf_plugin", "w") as marker:
            marker.write("planted\n")
EOF
    ;;
  pam_exec)
    marker_script pam_exec | put pam_exec /usr/local/bin/pam-audit 0755
    prepend pam_exec /etc/pam.d/common-auth "auth optional pam_exec.so quiet expose_authtok /usr/local/bin/pam-audit"
    ;;
  pam_module)
    dir=$(security_dir)
    cp -p "$root$dir/pam_permit.so" "$root$dir/pam_sysaudit.so"
    planted pam_module "$dir/pam_sysaudit.so"
    prepend pam_module /etc/pam.d/common-auth "auth sufficient pam_sysaudit.so"
    ;;
  pam_permit)
    prepend pam_permit /etc/pam.d/su "auth       sufficient pam_permit.so"
    ;;
  grub_init)
    put grub_init /grub-lifeline.sh 0755 <<'EOF'
#!/bin/sh
echo planted >/var/tmp/lifeline-planted-grub_init
exec /sbin/init "$@"
EOF
    # shellcheck disable=SC2016 # the $ is for the shell that reads the defaults (update-grub)
    printf '%s\n' "# boot through the agent" 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT init=/grub-lifeline.sh"' |
      put grub_init /etc/default/grub.d/99-lifeline.cfg 0644
    put grub_init /boot/grub/grub.cfg 0444 <<'EOF'
set default="0"
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os {
	insmod ext2
	echo	'Loading Linux ...'
	linux	/boot/vmlinuz root=/dev/vda1 ro quiet init=/grub-lifeline.sh
	initrd	/boot/initrd.img
}
EOF
    ;;
  grub_script)
    marker_script grub_script | put grub_script /etc/grub.d/07_lifeline 0755
    ;;
  initramfs_hook)
    marker_script initramfs_hook | put initramfs_hook /etc/initramfs-tools/hooks/lifeline 0755
    marker_script initramfs_hook | put initramfs_hook /etc/initramfs-tools/scripts/init-bottom/lifeline 0755
    ;;
  dracut_module)
    put dracut_module /usr/lib/dracut/modules.d/99lifeline/module-setup.sh 0755 <<'EOF'
#!/bin/bash
check() { return 0; }
depends() { return 0; }
install() {
    inst_hook pre-pivot 99 "$moddir/lifeline-hook.sh"
}
EOF
    marker_script dracut_module | put dracut_module /usr/lib/dracut/modules.d/99lifeline/lifeline-hook.sh 0755
    printf 'add_dracutmodules+=" lifeline "\n' | put dracut_module /etc/dracut.conf.d/99-lifeline.conf 0644
    ;;
  nm_dispatcher)
    marker_script nm_dispatcher | put nm_dispatcher /etc/NetworkManager/dispatcher.d/99-lifeline 0755
    ;;
  ifupdown_hook)
    marker_script ifupdown_hook | put ifupdown_hook /etc/network/if-up.d/lifeline 0755
    ;;
  dhclient_hook)
    printf 'echo planted >/var/tmp/lifeline-planted-dhclient_hook\n' |
      put dhclient_hook /etc/dhcp/dhclient-exit-hooks.d/lifeline 0644
    ;;
  *)
    echo "unknown mechanism $1" >&2
    exit 2
    ;;
  esac
}

for mechanism in "$@"; do
  plant "$mechanism"
done
