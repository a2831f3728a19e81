/*
 * httpd: the metrics endpoint of migd and sfsd, an HTTP server on
 * libmicrohttpd that answers GET /metrics with a prom registry rendered
 * in the text exposition format. MHD runs it in a thread of its own, so a
 * scrape never waits for the daemon's main loop, and the daemon never
 * waits for a slow scraper; prom.h's lock keeps the two apart.
 */
#ifndef MIGD_HTTPD_H
#define MIGD_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct prom_registry;
struct httpd;

/*
 * Listen on listen ("127.0.0.1:9464") and serve reg (borrowed: it must
 * outlive the server). Returns 0 with *out set, or a negative errno with a
 * message naming the address in err.
 */
int httpd_start(const char *listen, struct prom_registry *reg, struct httpd **out, char *err,
		size_t errlen);
/* Stop serving (waits for the server's thread); NULL is fine. */
void httpd_free(struct httpd *h);

#endif
