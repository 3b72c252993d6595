/* Sessions: a run saved to disk so it can be listed, resumed exactly and
 * exported.
 *
 * A session is a directory <root>/<NAME>/ holding
 *   session.json  format_version, creation and save times, the run's initial
 *                 configuration ("config"), its exported state ("state": the
 *                 counters, PRNG states, cursors, live-change log, metric
 *                 history and config_now of run_state_export), the base
 *                 model's identity, the task and its data files' identity,
 *                 the last spectrum, a summary for listing, and the
 *                 "tensors" table: name, dtype, count, shape, offset and
 *                 CRC32 of every blob in state.bin;
 *   state.bin     the blobs, concatenated (host byte order, recorded).
 * Frozen base weights are not copied: the model directory is referenced and
 * checked on resume (size, FNV-1a of the safetensors header, CRC32 of a
 * sample of the file, CRC32 of config.json).
 *
 * The root is BILORA_SESSIONS, else $XDG_DATA_HOME/bilora/sessions, else
 * ~/.local/share/bilora/sessions. Every function taking `root` accepts NULL
 * for that default (tests pass their own directory).
 *
 * Crash safety. A save writes <root>/.NAME.tmp.<pid>/, fsyncs both files and
 * the directory, moves an existing <root>/NAME aside to <root>/.NAME.old,
 * renames the new directory to <root>/NAME, fsyncs the root, then deletes
 * the aside copy. A directory named NAME is only ever created by renaming a
 * complete, fsynced one, and the aside copy is only deleted while NAME
 * exists, so at every moment one of the two is a complete snapshot: a load
 * reads NAME, or .NAME.old when NAME is missing. Saves of one name are
 * serialised by a POSIX record lock on <root>/.NAME.lock (released by the
 * kernel when a saver dies), under which leftovers of killed saves are
 * removed.
 *
 * Functions return 0 or -1 with err naming the session, the file or field
 * and what was expected. Nothing here keeps global state. */
#ifndef BILORA_SESSIONS_SESSION_H
#define BILORA_SESSIONS_SESSION_H

#include "engine/train.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SESSION_FORMAT_VERSION 1
#define SESSION_NAME_MAX 64

/* The default root into out (not created). */
int session_root(char *out, size_t cap, char *err, size_t errlen);
/* A name is 1..64 printable ASCII characters, no '/', not starting with
 * '.', and not "..": it names exactly one directory inside the root. */
int session_name_check(const char *name, char *err, size_t errlen);

/* Saves the run's complete state as session `name` (replacing an existing
 * snapshot of that name atomically). Call from the thread that steps r, at
 * a step boundary (between run_step calls). The session keeps its creation
 * time across saves. */
int session_save(const char *root, const char *name, Run *r, char *err, size_t errlen);

/* The same, in the shape of a snapshot callback a trainer thread can hold:
 * ctx is the root (const char *) or NULL. */
int session_snapshot(void *ctx, const char *name, Run *r, char *err, size_t errlen);

/* A change asked for at resume: key is a TrainConfig field name
 * ("lower_lr", "eval_every"; CLI spellings with '-' are accepted). */
typedef struct {
    const char *key;
    const char *value;
} SessionOverride;

/* 0 when key may change at resume (the hot settings run_set accepts, and
 * "device", which changes where the run computes, not what), else -1 with
 * the reason. */
int session_override_allowed(const char *key, char *err, size_t errlen);

/* Loads session `name` into a new run: checks the format version, the
 * tensors table against state.bin (every blob's size, offset and CRC32),
 * the base model's identity and the data files, then creates the run from
 * the saved initial configuration (with the "device" override, if any),
 * imports the state, and applies the hot overrides through run_set (logged
 * as live changes at the saved step). Reads only: whatever fails, the
 * session on disk is unchanged. *out is the caller's (run_free). */
int session_load(const char *root, const char *name, const SessionOverride *ov, int n_ov,
                 const TrainCallbacks *cb, Run **out, char *err, size_t errlen);

/* Checks a session without creating a run: session.json parses, its format
 * version is readable, state.bin matches the tensors table (sizes, offsets,
 * CRC32s). *step (may be NULL): the step it was saved at. */
int session_verify(const char *root, const char *name, long *step, char *err, size_t errlen);

/* What `bilora sessions` lists, from session.json's summary. */
typedef struct {
    char name[SESSION_NAME_MAX + 1];
    char task[64], method[16], model[1024];
    long step, total_steps;
    char metric_name[16];   /* the task's headline metric ("accuracy", "mcc") */
    char metric_split[16];  /* the split of the last evaluation ("dev", ...) */
    double metric;          /* its last value; NAN when no evaluation yet */
    double loss;            /* the last training loss; NAN before the first step */
    int64_t created, saved; /* Unix seconds */
    int format_version;
    int from_aside;         /* only the aside copy exists (an interrupted save) */
} SessionSummary;

/* Every session under root, sorted by name (*out malloc'ed, free it).
 * A missing root is an empty list. Unreadable entries are skipped, each
 * reported through warn (may be NULL). */
int session_list(const char *root, SessionSummary **out, int *n,
                 void (*warn)(void *ctx, const char *message), void *ctx, char *err, size_t errlen);
int session_summary(const char *root, const char *name, SessionSummary *out, char *err,
                    size_t errlen);
/* 1 when a session of this name is on disk (readable or not), else 0. */
int session_exists(const char *root, const char *name);
/* Deletes the session (both copies, the lock file). -1 when absent. */
int session_remove(const char *root, const char *name, char *err, size_t errlen);

/* session.json of a session, parsed (format version checked), without
 * reading state.bin: what the exports and a session browser need. */
struct cJSON;
int session_read_json(const char *root, const char *name, struct cJSON **out, char *err,
                      size_t errlen);

/* ---- exports (sessions/export.c), from a parsed session.json ----
 * CSV: one row per training step and per evaluation:
 *   kind,step,split,loss,upper_loss,<metric name>
 *   step,1,,0.693147,0.701234,
 *   eval,4,dev,0.688,,0.5417
 * (empty fields where a value does not apply or is not finite). */
int session_export_csv(const struct cJSON *session, FILE *f, char *err, size_t errlen);
/* SVG (hand-written, no scripts): a title line; the loss chart (training
 * loss, raw and smoothed, upper loss, evaluation losses, dashed markers at
 * live changes); the metric chart (the headline metric per evaluation
 * split); and, when the session holds a spectrum, the singular-value
 * heatmap (one row per adapted matrix, one column per index) with its
 * colour scale. Axes with ticks and labels throughout. */
int session_export_svg(const struct cJSON *session, FILE *f, char *err, size_t errlen);

/* ---- headless driving (train --session, resume) ----
 * Steps r to completion as train_run does (run_finish at the end), saving
 * to session `name` every save_every steps (0: only at the end) and when
 * the run completes; name NULL: no saving. A diverged or failed run
 * returns -1 and keeps its last snapshot. r stays the caller's. */
int session_drive(Run *r, const char *root, const char *name, long save_every, char *err,
                  size_t errlen);
/* Asks a running session_drive to stop at the next step boundary: it saves
 * the session there (when it has a name) and returns SESSION_INTERRUPTED,
 * err saying where it stopped. Async-signal-safe (a Ctrl-C handler calls it). */
#define SESSION_INTERRUPTED 3
void session_interrupt(void);
/* Installs SIGINT/SIGTERM handlers for a headless run: the first signal
 * calls session_interrupt and says so on stderr; a second one ends the
 * process at once (the handlers reset themselves). */
void session_catch_interrupts(void);
/* train_run with a session: checks the name first (and refuses one that
 * exists: a new run never replaces a saved one silently), creates the run,
 * drives it as above, frees it. What `bilora train --session NAME` calls. */
int session_train(const TrainConfig *cfg, const TrainCallbacks *cb, const char *root,
                  const char *name, long save_every, char *err, size_t errlen);

#endif
