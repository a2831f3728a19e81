/*
 * migctl_progress: progress bars for migrations on a terminal.
 *
 * A board keeps what is known of each migration still under way (from
 * migration objects and from migration.* events) and draws one bar per
 * migration below the normal output, redrawn in place with ANSI cursor
 * movement. Whoever prints a normal line first clears the board, prints,
 * and draws it again, so event lines scroll above the bars. Lines are cut to
 * the terminal's width: a wrapped line would throw off the count of lines
 * to move back over. Only used when the stream is a terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migctl.h"
#include "migctl_progress.h"
#include "util.h"

#define BOARD_MAX_LINES 12        /* bars drawn; the rest are counted */
#define BOARD_PERIOD_NS 100000000 /* at most 10 redraws a second */

struct entry {
	int64_t id;
	char guest[64], src[64], dst[64], state[16];
	int64_t transferred_bytes, remaining_bytes, rounds;
};

struct board {
	FILE *out;
	struct entry *v;
	size_t n, cap;
	int lines;               /* drawn now, to move back over */
	uint64_t last_draw_ns;
};

struct board *board_new(FILE *out)
{
	struct board *b = calloc(1, sizeof(*b));
	if (b)
		b->out = out;
	return b;
}

void board_free(struct board *b)
{
	if (!b)
		return;
	free(b->v);
	free(b);
}

static struct entry *find(struct board *b, int64_t id, int create)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->v[i].id == id)
			return &b->v[i];
	if (!create)
		return NULL;
	if (GROW(b->v, b->cap, b->n + 1) < 0)
		return NULL;
	struct entry *e = &b->v[b->n++];
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->transferred_bytes = e->remaining_bytes = -1;
	return e;
}

static void copy_field(char *dst, size_t len, json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (s && *s)
		snprintf(dst, len, "%s", s);
}

static void forget(struct board *b, struct entry *e)
{
	*e = b->v[--b->n];
}

void board_migration(struct board *b, json_t *m)
{
	int64_t id = jint(m, "id", -1);
	if (!b || id < 0)
		return;
	const char *state = jstr(m, "state");
	struct entry *e = find(b, id, !migration_is_final(state));
	if (!e)
		return;
	copy_field(e->guest, sizeof(e->guest), m, "guest");
	copy_field(e->src, sizeof(e->src), m, "src");
	copy_field(e->dst, sizeof(e->dst), m, "dst");
	copy_field(e->state, sizeof(e->state), m, "state");
	e->transferred_bytes = jint(m, "transferred_bytes", e->transferred_bytes);
	e->remaining_bytes = jint(m, "remaining_bytes", e->remaining_bytes);
	e->rounds = jint(m, "rounds", e->rounds);
	if (migration_is_final(e->state))
		forget(b, e);
}

void board_event(struct board *b, json_t *ev)
{
	const char *type = jstr(ev, "type");
	if (!b || strncmp(type, "migration.", 10) != 0)
		return;
	const char *what = type + 10;
	if (strcmp(what, "progress") == 0) {
		struct entry *e = find(b, jint(ev, "id", -1), 1);
		if (e && !e->state[0])
			snprintf(e->state, sizeof(e->state), "migrating");
		board_migration(b, ev);
		return;
	}
	/* queued, started, migrating, completed, failed, aborted: the event
	 * names the state even when it carries no "state" field */
	json_t *m = json_deep_copy(ev);
	if (!m)
		return;
	json_object_set_new(m, "state", json_string(what));
	board_migration(b, m);
	json_decref(m);
}

static int columns(FILE *out)
{
	struct winsize ws;
	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* One line for e, at most width characters: the bar takes what is left. */
static void format_entry(const struct entry *e, char *line, int width)
{
	char head[256], tail[96], done[32], total[32], bar[64];
	snprintf(head, sizeof(head), "%6lld %-10s %s -> %s", (long long)e->id, e->guest,
		 e->src[0] ? e->src : "?", e->dst[0] ? e->dst : "?");
	int64_t sum = e->transferred_bytes + e->remaining_bytes;
	if (e->transferred_bytes < 0 || e->remaining_bytes < 0 || sum <= 0) {
		snprintf(line, (size_t)width + 1, "%s  %s", head, e->state[0] ? e->state : "?");
		return;
	}
	double frac = (double)e->transferred_bytes / (double)sum;
	snprintf(tail, sizeof(tail), "%3d%%  %s / %s  round %lld", (int)(frac * 100),
		 format_size((uint64_t)e->transferred_bytes, done, sizeof(done)),
		 format_size((uint64_t)sum, total, sizeof(total)), (long long)e->rounds);
	int bar_w = width - (int)strlen(head) - (int)strlen(tail) - 6;
	bar_w = bar_w < 10 ? 10 : bar_w > (int)sizeof(bar) - 1 ? (int)sizeof(bar) - 1 : bar_w;
	int filled = (int)(frac * bar_w);
	for (int i = 0; i < bar_w; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[bar_w] = '\0';
	snprintf(line, (size_t)width + 1, "%s  [%s] %s", head, bar, tail);
}

void board_clear(struct board *b)
{
	if (!b || b->lines == 0)
		return;
	fprintf(b->out, "\033[%dA\r\033[J", b->lines);
	b->lines = 0;
	fflush(b->out);
}

void board_draw(struct board *b, const char *summary, int force)
{
	if (!b)
		return;
	uint64_t now = now_ns();
	if (!force && now - b->last_draw_ns < BOARD_PERIOD_NS)
		return;
	b->last_draw_ns = now;
	board_clear(b);
	int width = columns(b->out) - 1;
	char line[512];
	if (width > (int)sizeof(line) - 1)
		width = (int)sizeof(line) - 1;
	if (summary) {
		fprintf(b->out, "%.*s\n", width, summary);
		b->lines++;
	}
	for (size_t i = 0; i < b->n && i < BOARD_MAX_LINES; i++) {
		format_entry(&b->v[i], line, width);
		fprintf(b->out, "%s\n", line);
		b->lines++;
	}
	if (b->n > BOARD_MAX_LINES) {
		fprintf(b->out, "  ... and %zu more\n", b->n - BOARD_MAX_LINES);
		b->lines++;
	}
	fflush(b->out);
}
