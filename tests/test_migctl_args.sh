#!/bin/sh
# test_migctl_args.sh: migctl's argument parsing, with no migd at all.
#
# Every usage error must exit 2 with a message naming the bad option or
# value, before anything is sent: migctl points at a port nobody listens
# on, so a request that slipped through would come back as exit 3 (no
# answer), never 2. --help of each subcommand exits 0 with no migd.
# Covers the subcommands of jobs, checkpoints and restores and the
# checkpoint policy (cli/migctl_ckpt.c, cli/migctl_policy.c).
#
# Env: MIGCTL names the program under test. TAP lines as the other migd
# tests (lib-migd.sh); the first failure exits 1.
set -u
. "$(dirname "$0")/lib-migd.sh"

: "${MIGCTL:?set MIGCTL to the migctl program}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_migctl_args.XXXXXX") || exit 1
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
port=$(free_port) || fail "no free port pair in 20000-32000"
endpoint="tcp://127.0.0.1:$port"
ctl_timeout=300

# --help needs no migd, wherever the global options are
for sub in "job set" "job list" "checkpoint create" "checkpoint list" "checkpoint show" \
	"checkpoint rm" "restore" "restore list" "restore show"; do
	# shellcheck disable=SC2086
	ctl $sub --help >"$tmp/out" 2>"$tmp/err" || fail "migctl $sub --help: exit $?"
	grep -q "^usage: migctl $sub" "$tmp/out" || fail "migctl $sub --help: got $(cat "$tmp/out")"
done
ctl --json checkpoint create --help >"$tmp/out" || fail "--json before checkpoint create --help"
grep -q "skip-rollback" "$tmp/out" && fail "checkpoint create --help shows restore's options"
ctl restore --help >"$tmp/out"
grep -q "duplicated" "$tmp/out" || fail "restore --help: --skip-rollback must say it duplicates data"
grep -q '"list" and "show" are never one' "$tmp/out" ||
	fail "restore --help: must say how restore list/show and restore CHECKPOINT are told apart"
ok "--help of job, checkpoint and restore subcommands with no migd"

# jobs
expect_exit 2 'JOB is required' job set
expect_exit 2 '--data sfs:/PATH is required' job set j1
expect_exit 2 '--data "jobs/x"' job set j1 --data jobs/x
expect_exit 2 '--frob' job set j1 --data sfs:/x --frob
expect_exit 2 'unexpected argument "x"' job list x
ok "job set and job list refuse bad arguments"

# checkpoint create, list, show, rm
expect_exit 2 'JOB (or one or more GUESTs) is required' checkpoint create
expect_exit 2 'JOB (or one or more GUESTs) is required' checkpoint create --wait --json
expect_exit 2 '--keep "0"' checkpoint create j1 --keep 0
expect_exit 2 '--keep "many"' checkpoint create j1 --keep many
expect_exit 2 '--keep "-1"' checkpoint create j1 --keep=-1
expect_exit 2 'unknown option "--bogus"' checkpoint create j1 --bogus
expect_exit 2 'unknown option "--hosts"' checkpoint create j1 --hosts n1
expect_exit 2 '"--keep" needs a value' checkpoint create j1 --keep
expect_exit 2 '--limit "0"' checkpoint list --limit 0
expect_exit 2 'unexpected argument "j2"' checkpoint list j1 j2
expect_exit 2 'unknown option "--keep"' checkpoint list --keep 3
expect_exit 2 'ID is required' checkpoint show
expect_exit 2 'ID "abc"' checkpoint show abc
expect_exit 2 'ID "0"' checkpoint rm 0
expect_exit 2 'unexpected argument "8"' checkpoint rm 7 8
ok "checkpoint create, list, show and rm refuse bad arguments"

# restore
expect_exit 2 'give a CHECKPOINT or --from-manifest, not both' \
	restore 7 --from-manifest j1/7/manifest.json
expect_exit 2 'CHECKPOINT (an id, see checkpoint list) or --from-manifest' restore
expect_exit 2 'CHECKPOINT (an id, see checkpoint list) or --from-manifest' restore --wait
expect_exit 2 'CHECKPOINT "latest"' restore latest
expect_exit 2 'unexpected argument "8"' restore 7 8
expect_exit 2 '--hosts "n1,,n2"' restore 7 --hosts n1,,n2
expect_exit 2 '--from-manifest ""' restore --from-manifest ""
expect_exit 2 'unknown option "--keep"' restore 7 --keep 2
expect_exit 2 'unknown option "--no-rollback"' restore 7 --no-rollback
expect_exit 2 '--limit "x"' restore list --limit x
expect_exit 2 'ID "seven"' restore show seven
expect_exit 2 'unknown option "--wait"' restore show 3 --wait
ok "restore, restore list and restore show refuse bad arguments"

# the checkpoint policy
expect_exit 2 '--job JOB is required' policy add checkpoint ck --every 30m
expect_exit 2 '--every DURATION or --every auto is required' policy add checkpoint ck --job j1
expect_exit 2 '--every "soon"' policy add checkpoint ck --job j1 --every soon
expect_exit 2 '--every "0"' policy add checkpoint ck --job j1 --every 0
expect_exit 2 '--keep "0"' policy add checkpoint ck --job j1 --every 30m --keep 0
expect_exit 2 '--on-failure "reboot"' policy add checkpoint ck --job j1 --every auto \
	--on-failure reboot
expect_exit 2 '--mtbf "never"' policy add checkpoint ck --job j1 --every auto --mtbf never
expect_exit 2 'NAME is required after checkpoint' policy add checkpoint --job j1 --every 1h
expect_exit 2 '--every auto: only a checkpoint policy' policy add interval p --every auto \
	--guests all
expect_exit 2 'expected interval, cron, mtbf or checkpoint' policy add ckpt ck --job j1
ok "policy add checkpoint refuses bad arguments"

# well-formed commands do get sent: no migd, so exit 3 (nothing else)
expect_exit 3 'no answer from migd' checkpoint create j1 --keep 2 --wait
expect_exit 3 'no answer from migd' restore 7 --hosts n1,n2 --json
expect_exit 3 'no answer from migd' restore list j1 --limit 5
expect_exit 3 'no answer from migd' policy add checkpoint ck --job j1 --every auto --mtbf 1d
ok "well-formed commands reach for migd (exit 3 without one)"

echo "1..$checks"
echo "PASS: test_migctl_args"
