/* libFuzzer target: migd's reading of migagent messages (agent_link). The
 * first byte picks one of a few connections, the rest is the message; any
 * bytes must be answered or taken, never crash, and leave every agent's
 * state sane. Messages that pass go into the state the next input sees,
 * so sequences (hello, activity, reply) are explored too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent_link.h"
#include "db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t fuzz_clock(void *arg)
{
	return 1;
}

static struct db *db;

static struct agent_link *link_once(void)
{
	static struct agent_link *al;
	char path[64], err[256];
	if (al)
		return al;
	snprintf(path, sizeof(path), "/tmp/fuzz_agent_%d.db", (int)getpid());
	unlink(path);
	if (db_open(path, &db, err, sizeof(err)) < 0 ||
	    agent_link_new("tcp://127.0.0.1:*", db, fuzz_clock, NULL, &al, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_agent: %s\n", err);
		abort();
	}
	return al;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_link *al = link_once();
	if (size < 1)
		return 0;
	char rid[2] = { 'r', (char)('0' + data[0] % 4) };
	agent_link_feed(al, rid, sizeof(rid), data + 1, size - 1);
	json_t *list = agent_link_list(al);
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a) {
		json_t *w = json_object_get(a, "write_bps");
		if (!json_is_null(w) && json_number_value(w) < 0)
			abort(); /* a negative rate got through */
	}
	json_decref(list);
	json_decref(db_events_take(db)); /* or they pile up over millions of runs */
	return 0;
}
