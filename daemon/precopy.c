/*
 * precopy: see precopy.h. The stepped object and the estimate are written
 * apart on purpose, one as a state machine over small time steps, the other
 * as a loop over whole rounds, so that the tests can hold each against the
 * other.
 */
#include "precopy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

struct precopy {
	struct precopy_params p;   /* defaults filled in */
	enum precopy_phase phase;
	enum precopy_failure failure;
	unsigned round;
	unsigned throttle_pct;
	double elapsed_s;
	double sent_bytes;
	double round_bytes;        /* what this round started with */
	double round_start_s;
	double left_bytes;         /* still to send in this round or phase */
	double dirty_bytes;        /* dirtied during this round */
	double postcopy_bytes;     /* to follow the guest after the switch-over */
	double switch_left_s;
	double stopped_at_s;
	double downtime_s;
	bool postcopy_used;
};

static bool bad_figure(double v)
{
	return !(v >= 0.0) || !isfinite(v);
}

/* Validate and fill in the defaults. */
static int resolve_params(const struct precopy_params *in, struct precopy_params *out)
{
	if (!in || in->memory_bytes == 0)
		return -EINVAL;
	if (bad_figure(in->dirty_rate_bps) || bad_figure(in->max_downtime_s) ||
	    bad_figure(in->switchover_s) || bad_figure(in->bandwidth_cap_bps) ||
	    bad_figure(in->max_total_s))
		return -EINVAL;
	if (in->throttle_initial_pct > 100 || in->throttle_increment_pct > 100 ||
	    in->throttle_max_pct > 100)
		return -EINVAL;
	*out = *in;
	if (out->max_downtime_s == 0)
		out->max_downtime_s = PRECOPY_DEFAULT_MAX_DOWNTIME_S;
	if (out->max_rounds == 0)
		out->max_rounds = PRECOPY_DEFAULT_MAX_ROUNDS;
	if (out->throttle_initial_pct == 0)
		out->throttle_initial_pct = PRECOPY_DEFAULT_THROTTLE_INITIAL_PCT;
	if (out->throttle_increment_pct == 0)
		out->throttle_increment_pct = PRECOPY_DEFAULT_THROTTLE_INCREMENT_PCT;
	if (out->throttle_max_pct == 0)
		out->throttle_max_pct = PRECOPY_DEFAULT_THROTTLE_MAX_PCT;
	if (out->working_set_bytes == 0 || out->working_set_bytes > out->memory_bytes)
		out->working_set_bytes = out->memory_bytes;
	return 0;
}

static double capped_rate(const struct precopy_params *p, double rate_bps)
{
	if (p->bandwidth_cap_bps > 0 && rate_bps > p->bandwidth_cap_bps)
		return p->bandwidth_cap_bps;
	return rate_bps;
}

static double dirty_rate(const struct precopy_params *p, unsigned throttle_pct)
{
	return p->dirty_rate_bps * (double)(100 - throttle_pct) / 100.0;
}

/* QEMU: the first throttle is cpu-throttle-initial, then it grows. */
static unsigned next_throttle(const struct precopy_params *p, unsigned throttle_pct)
{
	unsigned next = throttle_pct == 0 ? p->throttle_initial_pct
					  : throttle_pct + p->throttle_increment_pct;
	return next > p->throttle_max_pct ? p->throttle_max_pct : next;
}

int precopy_new(const struct precopy_params *params, struct precopy **out)
{
	struct precopy_params p;
	int rc = resolve_params(params, &p);
	if (rc < 0)
		return rc;
	struct precopy *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->p = p;
	m->phase = PRECOPY_ROUND;
	m->round_bytes = m->left_bytes = (double)p.memory_bytes;
	*out = m;
	return 0;
}

void precopy_free(struct precopy *m)
{
	free(m);
}

bool precopy_finished(const struct precopy *m)
{
	return m->phase == PRECOPY_DONE || m->phase == PRECOPY_FAILED;
}

static void fail(struct precopy *m, enum precopy_failure why)
{
	m->phase = PRECOPY_FAILED;
	m->failure = why;
}

static void stop_guest(struct precopy *m)
{
	m->stopped_at_s = m->elapsed_s;
}

static void start_switchover(struct precopy *m)
{
	m->phase = PRECOPY_SWITCHOVER;
	m->switch_left_s = m->p.switchover_s;
}

/* The completion test at the end of a round, and what follows it. */
static void end_round(struct precopy *m)
{
	double round_s = m->elapsed_s - m->round_start_s;
	double measured_bps = round_s > 0 ? m->round_bytes / round_s : INFINITY;
	double remaining = m->dirty_bytes;
	bool stop = remaining <= measured_bps * m->p.max_downtime_s;

	if (!stop && m->p.postcopy) {
		stop_guest(m);
		m->postcopy_bytes = remaining;
		m->postcopy_used = true;
		start_switchover(m);
		return;
	}
	if (!stop && m->round + 1 >= m->p.max_rounds) {
		if (!m->p.force_stop) {
			fail(m, PRECOPY_FAIL_ROUNDS);
			return;
		}
		stop = true;
	}
	if (stop) {
		stop_guest(m);
		m->phase = PRECOPY_STOP_COPY;
		m->left_bytes = remaining;
		return;
	}
	if (m->p.max_total_s > 0 && m->elapsed_s >= m->p.max_total_s) {
		fail(m, PRECOPY_FAIL_TIME);
		return;
	}
	if (m->p.auto_converge)
		m->throttle_pct = next_throttle(&m->p, m->throttle_pct);
	m->round++;
	m->round_bytes = m->left_bytes = remaining;
	m->dirty_bytes = 0;
	m->round_start_s = m->elapsed_s;
}

static double time_to_send(double bytes, double rate_bps)
{
	if (bytes <= 0)
		return 0;
	return rate_bps > 0 ? bytes / rate_bps : INFINITY;
}

enum event {
	EVENT_NONE,
	EVENT_SENT,       /* the round's or phase's bytes are all sent */
	EVENT_TIME_BOUND, /* max_total_s reached in pre-copy */
	EVENT_SWITCHED,   /* the switch-over cost has passed */
};

/* Seconds to the next event at an already capped rate, and which it is. */
static double next_event(const struct precopy *m, double rate_bps, enum event *kind)
{
	double t;
	switch (m->phase) {
	case PRECOPY_ROUND:
		t = time_to_send(m->left_bytes, rate_bps);
		*kind = EVENT_SENT;
		/* a round that ends exactly at the bound still gets its test */
		if (m->p.max_total_s > 0 && m->p.max_total_s - m->elapsed_s < t) {
			t = m->p.max_total_s - m->elapsed_s;
			*kind = EVENT_TIME_BOUND;
		}
		return t > 0 ? t : 0;
	case PRECOPY_STOP_COPY:
	case PRECOPY_POSTCOPY:
		*kind = EVENT_SENT;
		return time_to_send(m->left_bytes, rate_bps);
	case PRECOPY_SWITCHOVER:
		*kind = EVENT_SWITCHED;
		return m->switch_left_s;
	case PRECOPY_DONE:
	case PRECOPY_FAILED:
		break;
	}
	*kind = EVENT_NONE;
	return INFINITY;
}

double precopy_next_event_s(const struct precopy *m, double rate_bps)
{
	enum event kind;
	return next_event(m, capped_rate(&m->p, rate_bps), &kind);
}

double precopy_link_demand_bps(const struct precopy *m)
{
	switch (m->phase) {
	case PRECOPY_ROUND:
	case PRECOPY_STOP_COPY:
	case PRECOPY_POSTCOPY:
		return m->p.bandwidth_cap_bps > 0 ? m->p.bandwidth_cap_bps : INFINITY;
	default:
		return 0;
	}
}

/* Let step_s pass, up to and including no phase change. */
static void pass_time(struct precopy *m, double step_s, double rate_bps)
{
	switch (m->phase) {
	case PRECOPY_ROUND:
		m->dirty_bytes += dirty_rate(&m->p, m->throttle_pct) * step_s;
		if (m->dirty_bytes > (double)m->p.working_set_bytes)
			m->dirty_bytes = (double)m->p.working_set_bytes;
		/* fall through */
	case PRECOPY_STOP_COPY:
	case PRECOPY_POSTCOPY: {
		double sent = rate_bps * step_s;
		if (sent > m->left_bytes)
			sent = m->left_bytes;
		m->left_bytes -= sent;
		m->sent_bytes += sent;
		break;
	}
	case PRECOPY_SWITCHOVER:
		m->switch_left_s -= step_s;
		break;
	case PRECOPY_DONE:
	case PRECOPY_FAILED:
		break;
	}
	m->elapsed_s += step_s;
}

/* The step ended on an event: settle rounding, then move the phase on. */
static void on_event(struct precopy *m, enum event kind)
{
	if (kind == EVENT_SENT) {
		m->sent_bytes += m->left_bytes;
		m->left_bytes = 0;
	}
	switch (kind) {
	case EVENT_TIME_BOUND:
		m->elapsed_s = m->p.max_total_s;
		fail(m, PRECOPY_FAIL_TIME);
		return;
	case EVENT_SWITCHED:
		m->switch_left_s = 0;
		m->downtime_s = m->elapsed_s - m->stopped_at_s;
		if (m->postcopy_bytes > 0) {
			m->phase = PRECOPY_POSTCOPY;
			m->left_bytes = m->postcopy_bytes;
		} else {
			m->phase = PRECOPY_DONE;
		}
		return;
	case EVENT_SENT:
		if (m->phase == PRECOPY_ROUND)
			end_round(m);
		else if (m->phase == PRECOPY_STOP_COPY)
			start_switchover(m);
		else
			m->phase = PRECOPY_DONE;
		return;
	case EVENT_NONE:
		return;
	}
}

int precopy_advance(struct precopy *m, double dt_s, double rate_bps)
{
	if (bad_figure(dt_s) || bad_figure(rate_bps))
		return -EINVAL;
	double rate = capped_rate(&m->p, rate_bps);
	/* each pass ends a phase or the step; phases are bounded by max_rounds */
	while (!precopy_finished(m)) {
		enum event kind;
		double t = next_event(m, rate, &kind);
		if (t > dt_s) {
			pass_time(m, dt_s, rate);
			break;
		}
		pass_time(m, t, rate);
		dt_s -= t;
		on_event(m, kind);
	}
	return 0;
}

void precopy_status(const struct precopy *m, struct precopy_status *st)
{
	st->phase = m->phase;
	st->round = m->round;
	st->elapsed_s = m->elapsed_s;
	st->bytes_sent = m->sent_bytes;
	st->round_left_bytes = m->left_bytes;
	st->dirty_bytes = m->dirty_bytes;
	st->throttle_pct = m->throttle_pct;
}

int precopy_abort(struct precopy *m)
{
	if (precopy_finished(m))
		return -EALREADY;
	fail(m, PRECOPY_FAIL_ABORTED);
	return 0;
}

int precopy_result(const struct precopy *m, struct precopy_result *res)
{
	if (!precopy_finished(m))
		return -EAGAIN;
	res->converged = m->phase == PRECOPY_DONE;
	res->postcopy = m->postcopy_used && res->converged;
	res->failure = m->failure;
	res->rounds = m->round + 1;
	res->total_s = m->elapsed_s;
	res->downtime_s = res->converged ? m->downtime_s : 0;
	res->bytes_sent = m->sent_bytes;
	res->throttle_pct = m->throttle_pct;
	return 0;
}

/* Stop-and-copy (or post-copy) of `remaining` after the last round. */
static void estimate_finish(const struct precopy_params *p, double rate_bps, double remaining,
			    bool postcopy, struct precopy_result *res)
{
	double send_s = remaining / rate_bps;
	res->converged = true;
	res->postcopy = postcopy;
	res->downtime_s = (postcopy ? 0 : send_s) + p->switchover_s;
	res->total_s += send_s + p->switchover_s;
	res->bytes_sent += remaining;
}

int precopy_estimate(const struct precopy_params *params, double rate_bps,
		     struct precopy_result *res)
{
	struct precopy_params p;
	int rc = resolve_params(params, &p);
	if (rc < 0)
		return rc;
	if (bad_figure(rate_bps))
		return -EINVAL;
	double rate = capped_rate(&p, rate_bps);
	if (!(rate > 0))
		return -EINVAL;

	*res = (struct precopy_result){ 0 };
	double to_send = (double)p.memory_bytes;
	for (unsigned round = 0;; round++) {
		double round_s = to_send / rate;
		res->rounds = round + 1;
		if (p.max_total_s > 0 && res->total_s + round_s > p.max_total_s) {
			res->bytes_sent += rate * (p.max_total_s - res->total_s);
			res->total_s = p.max_total_s;
			res->failure = PRECOPY_FAIL_TIME;
			return 0;
		}
		res->total_s += round_s;
		res->bytes_sent += to_send;
		double dirty = dirty_rate(&p, res->throttle_pct) * round_s;
		if (dirty > (double)p.working_set_bytes)
			dirty = (double)p.working_set_bytes;

		/* the bandwidth measured over a round at a constant rate is that rate */
		if (dirty <= rate * p.max_downtime_s) {
			estimate_finish(&p, rate, dirty, false, res);
			return 0;
		}
		if (p.postcopy) {
			estimate_finish(&p, rate, dirty, true, res);
			return 0;
		}
		if (round + 1 >= p.max_rounds) {
			if (p.force_stop)
				estimate_finish(&p, rate, dirty, false, res);
			else
				res->failure = PRECOPY_FAIL_ROUNDS;
			return 0;
		}
		if (p.max_total_s > 0 && res->total_s >= p.max_total_s) {
			res->failure = PRECOPY_FAIL_TIME;
			return 0;
		}
		if (p.auto_converge)
			res->throttle_pct = next_throttle(&p, res->throttle_pct);
		to_send = dirty;
	}
}

int link_share(double link_bps, const double *demand_bps, size_t n, double *rate_bps)
{
	if (bad_figure(link_bps))
		return -EINVAL;
	size_t unfixed = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(demand_bps[i]) || demand_bps[i] < 0)
			return -EINVAL;
		/* -1 marks a flow whose share is not settled yet */
		rate_bps[i] = demand_bps[i] > 0 ? -1 : 0;
		unfixed += demand_bps[i] > 0;
	}
	/* water-filling: settle every flow that wants less than an equal share,
	 * then split what is left among the rest; at most n passes */
	double left = link_bps;
	while (unfixed > 0) {
		double share = left / (double)unfixed;
		bool settled = false;
		for (size_t i = 0; i < n; i++) {
			if (rate_bps[i] < 0 && demand_bps[i] <= share) {
				rate_bps[i] = demand_bps[i];
				left -= demand_bps[i];
				unfixed--;
				settled = true;
			}
		}
		if (settled)
			continue;
		for (size_t i = 0; i < n; i++)
			if (rate_bps[i] < 0)
				rate_bps[i] = share;
		break;
	}
	return 0;
}

const char *precopy_phase_name(enum precopy_phase phase)
{
	switch (phase) {
	case PRECOPY_ROUND: return "round";
	case PRECOPY_STOP_COPY: return "stop-copy";
	case PRECOPY_SWITCHOVER: return "switchover";
	case PRECOPY_POSTCOPY: return "postcopy";
	case PRECOPY_DONE: return "done";
	case PRECOPY_FAILED: return "failed";
	}
	return "unknown";
}

const char *precopy_failure_name(enum precopy_failure failure)
{
	switch (failure) {
	case PRECOPY_OK: return "none";
	case PRECOPY_FAIL_ROUNDS: return "did not converge within the round limit";
	case PRECOPY_FAIL_TIME: return "did not converge within the time limit";
	case PRECOPY_FAIL_ABORTED: return "aborted";
	}
	return "unknown";
}
