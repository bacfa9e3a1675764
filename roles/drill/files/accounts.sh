#!/bin/sh
# Plant account persistence into a disposable root the way intrusions do it: with the root's own
# shadow-utils (useradd, usermod, passwd) run in a chroot, so /etc/passwd-, /etc/shadow- and
# /etc/group- are left exactly as on a real system.
#
#   accounts.sh ROOT MECHANISM...
#
# Mechanisms (planted in this order whatever the order given, so that the backups the tools keep
# show the last change the way the scan expects):
#   system_account_shell   games gets an unowned copy of bash named "/usr/sbin/nologin " (with a
#                          trailing space, listed in /etc/shells) as its shell, and an ssh key
#   uid0_account           a second uid 0 account, toor, with a password
#   empty_password         a person's account, deploy, whose password is empty (passwd -d)
#   new_user               a person's account, support, with a password and no home
#                          (useradd -M), added last
#   root_password_changed  root's password hash set with chpasswd -e (shadow- keeps the old one)
#
# With PLANT_RECORD=DIR, "MECHANISM PATH" is appended to DIR/planted for every path inside the
# root that was created or changed. The password of every planted account is "lifeline-drill".
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 ROOT MECHANISM..." >&2
    exit 2
fi
ROOT=$1
shift
if [ ! -d "$ROOT/etc" ] || [ "$(cd "$ROOT" && pwd -P)" = / ]; then
    echo "$0: $ROOT is not a disposable root (no etc/, or it is /): refusing" >&2
    exit 2
fi

# openssl passwd -6 -salt lifelinedrill lifeline-drill (a crypt hash, not an expansion)
# shellcheck disable=SC2016
HASH='$6$lifelinedrill$/UWlKeHpzZFLuNIMGBYM9LaNJ7s5r35npDkUiXMteviP2b6/z8.cl1/Eccti42pS5mNgw5HAbdgqZGIE.aXl1.'
KEY='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxpZmVsaW5lLWRyaWxsLW5vdC1hLXJlYWwta2V5LXh4eHg lifeline-planted'
ACCOUNT_FILES='passwd passwd- shadow shadow- group group- gshadow gshadow- subuid subuid- subgid subgid- shells'

record() {
    if [ -n "${PLANT_RECORD:-}" ]; then
        echo "$1 $2" >>"$PLANT_RECORD/planted"
    fi
}

in_root() {
    timeout 60 chroot "$ROOT" "$@"
}

# The account files as they are now, to tell afterwards which ones a tool changed.
snapshot() {
    for name in $ACCOUNT_FILES; do
        if [ -e "$ROOT/etc/$name" ]; then
            echo "$name $(cksum <"$ROOT/etc/$name")"
        else
            echo "$name missing"
        fi
    done
}

record_changed() {
    mechanism=$1
    before=$2
    snapshot | while read -r name rest; do
        if ! printf '%s\n' "$before" | grep -qxF "$name $rest"; then
            record "$mechanism" "/etc/$name"
        fi
    done
}

plant_system_account_shell() {
    cp -p "$ROOT/bin/bash" "$ROOT/usr/sbin/nologin "
    record system_account_shell "/usr/sbin/nologin "
    echo "/usr/sbin/nologin " >>"$ROOT/etc/shells"
    in_root usermod -s "/usr/sbin/nologin " games
    home=$(awk -F: '$1 == "games" { print $6; exit }' "$ROOT/etc/passwd")
    mkdir -p "$ROOT$home/.ssh"
    record system_account_shell "$home/.ssh"
    echo "$KEY" >"$ROOT$home/.ssh/authorized_keys"
    record system_account_shell "$home/.ssh/authorized_keys"
}

plant_uid0_account() {
    in_root useradd -o -u 0 -g 0 -M -d /root -s /bin/bash -p "$HASH" toor 2>/dev/null
}

plant_empty_password() {
    in_root useradd -m -s /bin/bash deploy
    record empty_password /home/deploy
    in_root passwd -q -d deploy
}

plant_new_user() {
    in_root useradd -M -p "$HASH" support
}

plant_root_password_changed() {
    # chpasswd -e writes /etc/shadow alone, keeping the one before as /etc/shadow-, as passwd does.
    printf 'root:%s\n' "$HASH" | in_root chpasswd -e
}

for wanted in "$@"; do
    case $wanted in
    system_account_shell | uid0_account | empty_password | new_user | root_password_changed) ;;
    *)
        echo "$0: unknown mechanism $wanted" >&2
        exit 2
        ;;
    esac
done

for mechanism in system_account_shell uid0_account empty_password new_user root_password_changed; do
    for wanted in "$@"; do
        if [ "$wanted" = "$mechanism" ]; then
            before=$(snapshot)
            "plant_$mechanism"
            record_changed "$mechanism" "$before"
        fi
    done
done
