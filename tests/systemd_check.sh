#!/bin/sh
# systemd_check.sh: run by test_systemd.sh inside its systemd-nspawn
# container, as a oneshot unit. TAP lines on stdout (numbered from 2);
# "# check done" at the end. Env: PREFIX, SYSCONFDIR, LIBXL.
set -u
export PATH="$PREFIX/bin:$PREFIX/sbin:$PATH" SFS_CONF="$SYSCONFDIR/sfs.conf"
n=1
check() { # TEXT COMMAND...: ok/not ok on COMMAND's status
	text=$1
	shift
	n=$((n + 1))
	if "$@" >/tmp/out 2>&1; then
		echo "ok $n - $text"
	else
		echo "not ok $n - $text: $(tail -5 /tmp/out | tr '\n' ' ')"
	fi
}
active() { [ "$(systemctl is-active "$1")" = active ]; }
user_of() { ps -o user= -p "$(systemctl show -p MainPID --value "$1")" | tr -d ' '; }

check "our units are not enabled by the first boot's presets" \
	sh -c '! systemctl is-enabled -q migd && ! systemctl is-enabled -q sfsd.target'
check "systemctl enable sfsd@meta sfsd@io0 sfsd@io1 migd migagent" \
	systemctl enable sfsd@meta sfsd@io0 sfsd@io1 migd migagent
check "systemctl start sfsd.target migd migagent" timeout 120 systemctl start sfsd.target migd migagent
for u in sfsd.target sfsd@meta sfsd@io0 sfsd@io1 migd migagent; do
	check "$u active" active "$u"
done
check "migd's STATUS= says its endpoints" \
	sh -c 'systemctl show -p StatusText --value migd | grep -q "requests on tcp://127.0.0.1:7700"'
check "sfs ping: 3 servers" sfs ping
check "a file copied into sfs reads back" \
	sh -c 'echo hello-from-systemd >/tmp/h && sfs cp /tmp/h sfs:/h && [ "$(sfs cat sfs:/h)" = hello-from-systemd ]'
check "sfsd used the key of SYSCONFDIR, made none" \
	sh -c '! journalctl -u "sfsd@*" -o cat | grep -q "created capability key"'
check "sfsd@meta runs as a dynamic user" sh -c "[ \"$(user_of sfsd@meta)\" != root ]"
check "migagent runs as a dynamic user" sh -c "[ \"$(user_of migagent)\" != root ]"
check "migd runs as root" sh -c "[ \"$(user_of migd)\" = root ]"
check "sim hosts and a guest added" sh -c "migctl host add a --uri 'sim:///a?link=1gbit' --memory 64g &&
	migctl host add b --uri 'sim:///b?link=1gbit' --memory 64g && migctl guest add g1 --host a --memory 1g"
agent_up() {
	i=0
	while [ $i -lt 50 ]; do
		migctl --json agent list | grep -q '"connected": *true' && return 0
		sleep 0.2
		i=$((i + 1))
	done
	migctl agent list
	return 1
}
check "migagent.service connected to migd.service" agent_up
check "migrate g1 --to b --wait, quiesce required, through the agent" \
	sh -c 'timeout 120 migctl migrate g1 --to b --wait --quiet | grep -q "completed: g1 a -> b.*quiesce ok"'
check "migd's metrics count the migration (the endpoint under the unit's hardening)" \
	sh -c 'curl -sf http://127.0.0.1:9464/metrics | grep -q "^migd_migrations_total{.*result=\"completed\".*} 1"'
check "sfsd@meta and sfsd@io1 serve their metrics" \
	sh -c 'curl -sf http://127.0.0.1:9470/metrics | grep -q "^sfsd_requests_total{" &&
	curl -sf http://127.0.0.1:9472/metrics | grep -q "^sfsd_requests_total{"'
if [ "$LIBXL" = yes ]; then
	check "a migd warning is priority 4 in the journal" \
		sh -c 'journalctl -u migd -p 4..4 -o cat | grep -q "^backend libxl: "'
	check "migd's info lines are priority 6 (not all at one level)" \
		sh -c 'journalctl -u migd -p 6..6 -o cat | grep -q "^migd .*: requests on"'
fi
check "systemctl stop sfsd.target stops every sfsd@" sh -c 'systemctl stop sfsd.target &&
	! systemctl is-active -q sfsd@meta && ! systemctl is-active -q sfsd@io0 && ! systemctl is-active -q sfsd@io1'
check "systemctl stop migd migagent" sh -c 'timeout 60 systemctl stop migd migagent && ! systemctl is-active -q migd'
journalctl --no-pager -o short-precise -u migd -u 'sfsd@*' -u migagent | tail -25 | sed 's/^/# /'
echo "# check done"
