#!/bin/bash
# test_completion.sh: the bash completion of migctl and sfs
# (dist/completion/), sourced in bash and driven as bash drives it: set
# COMP_WORDS and COMP_CWORD, call the completion function, read COMPREPLY.
#
#   - `migctl mig<TAB>` offers migrate (and migration), `migctl host <TAB>`
#     the verbs, `migctl migrate g1 --<TAB>` migrate's options;
#   - names come from a running migd (sim backend, loopback, ports
#     25000-25999): guests for `migrate`, hosts for `--to` and `host show`,
#     policies for `policy pause`, jobs for `checkpoint list`, also with
#     --connect among the words instead of $MIGD_ENDPOINT;
#   - with migd gone, no names and no error on the terminal;
#   - `sfs sn<TAB>` offers snapshot, `sfs snapshot <TAB>` its verbs,
#     `sfs cp --<TAB>` cp's options, `sfs ls <TAB>` local files.
#
# Env: MIGD, MIGCTL, SFS (build tree programs), SRCDIR. TAP lines.
set -u
PORT_LO=25000
PORT_HI=25999
. "$(dirname "$0")/lib-migd.sh"
: "${SFS:?}" "${SRCDIR:?}"
migd_setup test_completion

# shellcheck source=../dist/completion/migctl
. "$SRCDIR/dist/completion/migctl"
# shellcheck source=../dist/completion/sfs
. "$SRCDIR/dist/completion/sfs"
complete -p migctl | grep -q -- "-F _migctl" || fail "dist/completion/migctl: no complete -F _migctl migctl"
complete -p sfs | grep -q -- "-F _sfs" || fail "dist/completion/sfs: no complete -F _sfs sfs"

# comp FUNCTION PROGRAM WORD...: COMPREPLY for the last WORD, sorted and
# space-joined in $got
comp() {
	local fn=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$fn" 2>"$tmp/comp.err"
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
	got=${got% }
	[ ! -s "$tmp/comp.err" ] || fail "completion wrote to the terminal: $(cat "$tmp/comp.err")"
}

expect() { # WHAT EXPECTED
	[ "$got" = "$2" ] || fail "$1: expected \"$2\", got \"$got\""
	ok "$1 -> $got"
}

export MIGD_ENDPOINT=$endpoint
comp _migctl "$MIGCTL" mig
expect "migctl mig<TAB>" "migrate migration"
comp _migctl "$MIGCTL" ho
expect "migctl ho<TAB>" "host"
comp _migctl "$MIGCTL" host ""
expect "migctl host <TAB>" "add disable enable list rm show"
comp _migctl "$MIGCTL" migrate g1 --w
expect "migctl migrate g1 --w<TAB>" "--wait"
comp _migctl "$MIGCTL" policy add ""
expect "migctl policy add <TAB>" "checkpoint cron interval mtbf"

run_migd 20 --time-scale 60
for h in alpha beta; do
	ctl host add $h --uri "sim:///$h?link=1gbit" --memory 64g >/dev/null 2>"$tmp/err" ||
		fail "host add $h: $(cat "$tmp/err")"
done
ctl guest add g1 --host alpha --memory 1g --job jobA --rank 0 >/dev/null 2>"$tmp/err" ||
	fail "guest add g1: $(cat "$tmp/err")"
ctl guest add g2 --host beta --memory 1g --job jobA --rank 1 >/dev/null 2>"$tmp/err" ||
	fail "guest add g2: $(cat "$tmp/err")"
ctl policy add interval nightly --every 1d --guests all >/dev/null 2>"$tmp/err" ||
	fail "policy add: $(cat "$tmp/err")"

comp _migctl "$MIGCTL" migrate ""
expect "migctl migrate <TAB> (guests from migd)" "g1 g2"
comp _migctl "$MIGCTL" migrate g1 --to ""
expect "migctl migrate g1 --to <TAB> (hosts from migd)" "alpha beta"
comp _migctl "$MIGCTL" host show b
expect "migctl host show b<TAB>" "beta"
comp _migctl "$MIGCTL" policy pause ""
expect "migctl policy pause <TAB> (policies from migd)" "nightly"
comp _migctl "$MIGCTL" checkpoint list ""
expect "migctl checkpoint list <TAB> (jobs from migd)" "jobA"
comp _migctl "$MIGCTL" checkpoint create ""
expect "migctl checkpoint create <TAB> (JOB or GUEST...)" "g1 g2 jobA"
comp _migctl "$MIGCTL" host add ""
expect "migctl host add <TAB> (a new name: nothing)" ""
unset MIGD_ENDPOINT
comp _migctl "$MIGCTL" --connect "$endpoint" evacuate ""
expect "migctl --connect ENDPOINT evacuate <TAB>" "alpha beta"
comp _migctl "$MIGCTL" guest list --connect "$endpoint" --host ""
expect "migctl guest list --connect ENDPOINT --host <TAB>" "alpha beta"

stop_pid "$migd_pid"
migd_pid=
export MIGD_ENDPOINT=$endpoint
comp _migctl "$MIGCTL" migrate ""
expect "migctl migrate <TAB> with migd stopped" ""

comp _sfs "$SFS" sn
expect "sfs sn<TAB>" "snapshot"
comp _sfs "$SFS" snapshot ""
expect "sfs snapshot <TAB>" "create list rm rollback"
comp _sfs "$SFS" cp --a
expect "sfs cp --a<TAB>" "--append"
mkdir -p "$tmp/dir" && : >"$tmp/dir/file-one" && : >"$tmp/dir/file-two"
comp _sfs "$SFS" ls "$tmp/dir/file-"
expect "sfs ls PATH<TAB> (local files)" "$tmp/dir/file-one $tmp/dir/file-two"

migd_done test_completion
