#!/bin/sh
# test_sfs_auth.sh: every case tries to get into sfs and must fail, against
# a real sfsd (auth = munge, the default) and the real munged.
#
#  1. a connection without a credential is closed before its first op
#     (a MKDIR sent first is answered EACCES, the directory never appears);
#  2. a replayed, an expired and a corrupted credential are refused;
#  3. uid 1001 cannot read a root-owned 0600 file (and the message names it);
#  4. uid 1001 cannot write into a directory without w, can with it, and
#     the file is then its own whatever owner the request claimed;
#  5. a caller is granted read by a group the server resolved (a real user
#     and group, made here and removed at the end), with no supplementary
#     groups in the client process itself;
#  6. uid 1001 cannot chmod or chown root's file, nor remove or rename
#     root's file in a sticky directory, nor move it out of /;
#  7. root from a host not in root_hosts creates files owned by nobody and
#     cannot read root's 0600 file.
# Clients run as other users through setpriv. Needs SFSD and SFS.
TEST_NAME=test_sfs_auth
PORT_LO=${PORT_LO:-20000}
# shellcheck source=lib-sfs.sh
. "$(dirname "$0")/lib-sfs.sh"
USER_NAME=sfsauth$$
GROUP_NAME=sfsauthg$$

for v in SFSD SFS; do
	eval "[ -n \"\${$v:-}\" ]" || { echo "Bail out! $v is not set"; exit 1; }
done
for p in setpriv munge unmunge useradd groupadd python3; do
	command -v "$p" >/dev/null 2>&1 || { echo "Bail out! $p is missing"; exit 1; }
done

cleanup_users() {
	userdel "$USER_NAME" 2>/dev/null
	groupdel "$GROUP_NAME" 2>/dev/null
	cleanup
}
trap cleanup_users EXIT

chmod 0755 "$tmp"
# the raw-frame client runs as other users too: from $tmp, which they can
# read, not from the source tree (a clone under a 0700 directory, as CI's)
cp "$(dirname "$0")/sfs_raw.py" "$tmp/sfs_raw.py" && chmod 0644 "$tmp/sfs_raw.py"
RAW="/usr/bin/python3 $tmp/sfs_raw.py"
start_sfs || { echo "Bail out! sfsd did not start"; exit 1; }
chmod 0644 "$tmp/sfs.conf"
conf=$tmp/sfs.conf
meta_port=$(sed -n 's/^address = 127.0.0.1:\([0-9]*\)$/\1/p' "$conf" | head -1)

S() { "$SFS" -c "$conf" -o agent_socket=off "$@"; }
# as UID [GID]: no supplementary groups, so only the server's view counts
as() { uid=$1; gid=$2; shift 2; setpriv --reuid "$uid" --regid "$gid" --clear-groups -- "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
fid_of() { S stat --json "$1" | field 'd["fid"]'; }
owner_of() { S stat --json "$1" | field '"%d:%d" % (d["uid"], d["gid"])'; }

# --- 1 ---------------------------------------------------------------------
out=$($RAW "$meta_port" --cred none mkdir /nocred 0777)
echo "$out" | grep -q '"status": -13' || fail "MKDIR without a credential was not refused: $out"
echo "$out" | grep -q 'no credential' || fail "the refusal does not say why: $out"
echo "$out" | grep -q '"closed": true}$' || fail "the connection stayed open: $out"
S ls sfs:/nocred >/dev/null 2>&1 && fail "MKDIR without a credential created /nocred"
grep -q "refused: no credential" "$tmp/sfsd.log" || fail "no log line for the refusal"
case_done "a connection without a credential is closed before its first operation"

# --- 2 ---------------------------------------------------------------------
munge -n >"$tmp/cred" || fail "munge -n failed"
out=$($RAW "$meta_port" --cred "$tmp/cred" ping)
echo "$out" | grep -q '"hello": {"status": 0' || fail "a fresh credential was refused: $out"
out=$($RAW "$meta_port" --cred "$tmp/cred" ping)
echo "$out" | grep -q '"hello": {"status": -13' || fail "a replayed credential was accepted: $out"
echo "$out" | grep -qi 'replayed' || fail "the replay refusal does not say replayed: $out"
echo "$out" | grep -q '"reply"' && fail "a request was served after a replayed credential: $out"
echo "$out" | grep -q '"closed": true}$' || fail "the replay's connection stayed open: $out"

munge -n -t 1 >"$tmp/cred_short" || fail "munge -n -t 1 failed"
sleep 3 # past its 1 s time-to-live (a precondition, not a timed assertion)
out=$($RAW "$meta_port" --cred "$tmp/cred_short" ping)
echo "$out" | grep -q '"hello": {"status": -13' || fail "an expired credential was accepted: $out"
echo "$out" | grep -qi 'expired' || fail "the refusal does not say expired: $out"

munge -n >"$tmp/cred_bad" || fail "munge -n failed"
# flip one character in the middle of the payload
python3 - "$tmp/cred_bad" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read().strip(); i = len(s) // 2
open(p, "w").write(s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:])
PY
out=$($RAW "$meta_port" --cred "$tmp/cred_bad" ping)
echo "$out" | grep -q '"hello": {"status": -13' || fail "a corrupted credential was accepted: $out"
grep -q "MUNGE credential refused" "$tmp/sfsd.log" || fail "no log line for refused credentials"
case_done "replayed, expired and corrupted credentials are refused"

# --- 3 ---------------------------------------------------------------------
echo "root's secret" >"$tmp/secret"
S cp "$tmp/secret" sfs:/secret >/dev/null || fail "root could not write /secret"
$RAW "$meta_port" --cred munge setattr "$(fid_of /secret)" 1 0600 0 0 >/dev/null
[ "$(S stat --json /secret | field 'oct(d["mode"])')" = 0o600 ] || fail "chmod 0600 by root"
S cat sfs:/secret >/dev/null || fail "root cannot read its own 0600 file"
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off cat sfs:/secret >"$tmp/out" 2>"$tmp/err" &&
	fail "uid 1001 read a root-owned 0600 file: $(cat "$tmp/out")"
grep -q "/secret" "$tmp/err" && grep -qi "permission" "$tmp/err" ||
	fail "the error does not name the path and the permission: $(cat "$tmp/err")"
case_done "uid 1001 cannot read a root-owned 0600 file"

# --- 4 ---------------------------------------------------------------------
S mkdir sfs:/ro >/dev/null || fail "mkdir /ro"
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off cp "$tmp/secret" sfs:/ro/mine \
	>/dev/null 2>"$tmp/err" && fail "uid 1001 wrote into a 0755 root directory"
grep -q "/ro/mine" "$tmp/err" || fail "the error does not name the path: $(cat "$tmp/err")"
S ls sfs:/ro | grep -q mine && fail "/ro/mine exists after a refused create"
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off mkdir sfs:/ro/sub 2>/dev/null &&
	fail "uid 1001 made a directory in a 0755 root directory"
S mkdir sfs:/rw >/dev/null
$RAW "$meta_port" --cred munge setattr "$(fid_of /rw)" 1 0777 0 0 >/dev/null
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off cp "$tmp/secret" sfs:/rw/mine \
	>/dev/null 2>"$tmp/err" || fail "uid 1001 cannot write into a 0777 dir: $(cat "$tmp/err")"
[ "$(owner_of /rw/mine)" = 1001:1001 ] || fail "uid 1001's file is owned by $(owner_of /rw/mine)"
case_done "uid 1001 cannot write into a directory without w"

# --- 5 ---------------------------------------------------------------------
# ids away from 1001, which the other cases use as a stranger
free_id() { i=$2; while getent "$1" "$i" >/dev/null; do i=$((i + 1)); done; echo "$i"; }
groupadd -g "$(free_id group 22000)" "$GROUP_NAME" || fail "groupadd"
useradd -M -N -u "$(free_id passwd 22000)" -g nogroup -G "$GROUP_NAME" \
	-s /usr/sbin/nologin "$USER_NAME" || fail "useradd"
u=$(id -u "$USER_NAME"); g=$(getent group "$GROUP_NAME" | cut -d: -f3)
ng=$(getent group nogroup | cut -d: -f3)
S cp "$tmp/secret" sfs:/grp >/dev/null || fail "root could not write /grp"
$RAW "$meta_port" --cred munge setattr "$(fid_of /grp)" 5 0640 0 "$g" >/dev/null
[ "$(owner_of /grp)" = "0:$g" ] || fail "/grp is owned by $(owner_of /grp), not 0:$g"
as "$u" "$ng" "$SFS" -c "$conf" -o agent_socket=off cat sfs:/grp >"$tmp/out" 2>"$tmp/err" ||
	fail "$USER_NAME (in $GROUP_NAME on the server) cannot read /grp: $(cat "$tmp/err")"
cmp -s "$tmp/out" "$tmp/secret" || fail "$USER_NAME read something else"
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off cat sfs:/grp >/dev/null 2>&1 &&
	fail "uid 1001 (not in $GROUP_NAME) read /grp"
case_done "access granted by a group the server resolved"

# --- 6 ---------------------------------------------------------------------
sfid=$(fid_of /secret)
out=$(as 1001 1001 $RAW "$meta_port" --cred munge setattr "$sfid" 1 0666 0 0)
echo "$out" | grep -q '"status": -1,' || fail "uid 1001 chmodded root's file: $out"
out=$(as 1001 1001 $RAW "$meta_port" --cred munge setattr "$sfid" 2 0 1001 0)
echo "$out" | grep -q '"status": -1,' || fail "uid 1001 took root's file: $out"
[ "$(owner_of /secret)" = 0:0 ] || fail "/secret is now owned by $(owner_of /secret)"
out=$(as 1001 1001 $RAW "$meta_port" --cred munge setattr "$(fid_of /rw/mine)" 2 0 0 0)
echo "$out" | grep -q '"status": -1,' || fail "uid 1001 gave its file to root: $out"
S mkdir sfs:/tmpdir >/dev/null
$RAW "$meta_port" --cred munge setattr "$(fid_of /tmpdir)" 1 01777 0 0 >/dev/null
S cp "$tmp/secret" sfs:/tmpdir/roots >/dev/null
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off rm sfs:/tmpdir/roots 2>/dev/null &&
	fail "uid 1001 removed root's file from a sticky directory"
out=$(as 1001 1001 $RAW "$meta_port" --cred munge rename /tmpdir/roots /tmpdir/mine)
echo "$out" | grep -q '"status": -13,' || fail "uid 1001 renamed root's file in a sticky dir: $out"
out=$(as 1001 1001 $RAW "$meta_port" --cred munge rename /secret /rw/stolen)
echo "$out" | grep -q '"status": -13,' || fail "uid 1001 moved root's file out of /: $out"
S ls sfs:/tmpdir | grep -q roots || fail "root's file left the sticky directory"
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off cp "$tmp/secret" sfs:/tmpdir/its \
	>/dev/null || fail "uid 1001 cannot create in a 1777 directory"
as 1001 1001 "$SFS" -c "$conf" -o agent_socket=off rm sfs:/tmpdir/its ||
	fail "uid 1001 cannot remove its own file from a sticky directory"
case_done "chmod, chown, rename and the sticky bit are the owner's or root's"

# --- 7 ---------------------------------------------------------------------
kill "$sfsd_pid"; wait "$sfsd_pid" 2>/dev/null; sfsd_pid=
# the same file system, restarted: loopback is no longer a root host
"$SFSD" -c "$conf" --all -o root_hosts=10.202.99.0/24 >"$tmp/sfsd2.log" 2>&1 &
sfsd_pid=$!
i=0
while ! S ping >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
S ping >/dev/null 2>&1 || fail "sfsd did not restart"
S cp "$tmp/secret" sfs:/rw/byroot >/dev/null || fail "squashed root cannot write into 0777"
[ "$(owner_of /rw/byroot)" = 65534:65534 ] ||
	fail "root from an unlisted host created a file owned by $(owner_of /rw/byroot)"
S cat sfs:/secret >/dev/null 2>&1 && fail "squashed root read root's 0600 file"
S cp "$tmp/secret" sfs:/ro/byroot >/dev/null 2>&1 && fail "squashed root wrote into 0755 /ro"
case_done "root from an unlisted host is nobody"

echo "1..$cases"
[ "$failures" -eq 0 ]
