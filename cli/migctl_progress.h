/*
 * migctl_progress.h: the board of progress bars that `migctl watch` and
 * `--wait` draw on a terminal, one bar per migration under way.
 */
#ifndef MIGCTL_PROGRESS_H
#define MIGCTL_PROGRESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

struct board;

/* A board drawing on out (a terminal). NULL when out of memory: every
 * function below accepts NULL and then does nothing. */
struct board *board_new(FILE *out);
void board_free(struct board *b);

/* Merge what a migration object (migration.show, queue) says; a migration
 * in a final state leaves the board. */
void board_migration(struct board *b, json_t *m);
/* Merge a migration.* event (progress: transferred and remaining bytes). */
void board_event(struct board *b, json_t *event);

/* Erase the board, so a normal line can be printed where it was. */
void board_clear(struct board *b);
/* Draw it again below the cursor, with an optional summary line on top;
 * unless force, at most ten times a second. */
void board_draw(struct board *b, const char *summary, int force);

#endif
