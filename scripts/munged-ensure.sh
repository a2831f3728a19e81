#!/bin/sh
# munged-ensure.sh: make sure a munged runs on this machine (or in this
# guest), with a key, so that sfs's auth = munge works. Idempotent: safe to
# call from the set-up script, the demo and every test that starts sfsd.
#
#   scripts/munged-ensure.sh [--key FILE]
#
# --key FILE: install FILE as /etc/munge/munge.key first (a guest gets the
# cluster's key). Without it a missing key is created (mungekey, or 1024
# bits from /dev/urandom), owner munge, mode 0400. munged is started
# directly when nothing answers on its socket (no systemd needed); the
# script waits, bounded, until the socket answers. Exit 0 when munged
# answers, 1 otherwise (with the reason on stderr).
set -eu

KEY=/etc/munge/munge.key
SOCKET=/run/munge/munge.socket.2
src_key=
while [ $# -gt 0 ]; do
	case "$1" in
	--key) src_key=$2; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "munged-ensure.sh: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
	esac
done

die() { echo "munged-ensure.sh: $*" >&2; exit 1; }

command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] ||
	die "munged is not installed (apt-get install munge; scripts/bootstrap.sh does)"
PATH=$PATH:/usr/sbin:/sbin
owner=root
id munge >/dev/null 2>&1 && owner=munge

answers() { [ -S "$SOCKET" ] && munge -n --socket="$SOCKET" 2>/dev/null | unmunge --socket="$SOCKET" >/dev/null 2>&1; }

mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
chown "$owner" /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge
chmod 0755 /run/munge
if [ -n "$src_key" ]; then
	[ -s "$src_key" ] || die "key $src_key is missing or empty"
	if ! cmp -s "$src_key" "$KEY" 2>/dev/null; then
		# cp, not install: a busybox guest has no install applet
		rm -f "$KEY"
		cp "$src_key" "$KEY"
		# a running munged keeps its old key: restart it
		old_pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
		[ -n "$old_pid" ] && kill "$old_pid" 2>/dev/null || true
		i=0; while answers && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	fi
fi
if [ ! -s "$KEY" ]; then
	if command -v mungekey >/dev/null 2>&1; then
		mungekey --create --keyfile="$KEY" --bits=1024
	else
		dd if=/dev/urandom of="$KEY" bs=128 count=1 2>/dev/null
	fi
fi
chown "$owner" "$KEY"
chmod 0400 "$KEY"

answers && exit 0
rm -f "$SOCKET" "$SOCKET.lock"
if [ "$owner" = munge ] && command -v runuser >/dev/null 2>&1; then
	runuser -u munge -- munged --key-file="$KEY" --socket="$SOCKET" || true
else
	munged --force --key-file="$KEY" --socket="$SOCKET" || true
fi
i=0
while [ $i -lt 100 ]; do
	answers && exit 0
	sleep 0.1
	i=$((i + 1))
done
die "munged does not answer on $SOCKET (see /var/log/munge/munged.log)"
