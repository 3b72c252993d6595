/* The only door between a front end and a run: the run goes on in its own
 * thread; the front end sends commands and reads copies of what the run
 * published at its last step boundary. Nothing here blocks the run beyond a
 * short copy under a lock.
 *
 *   Trainer *t; trainer_start(&t, &cfg, err, n);
 *   trainer_send(t, &(TrainerCmd){.kind = CMD_SET, .key = "lower_lr", .value = "1e-4"});
 *   TrainerView *v = trainer_view_new(); trainer_read(t, v); ... trainer_view_free(v);
 *   trainer_send(t, &(TrainerCmd){.kind = CMD_STOP}); trainer_join(t);
 */
#ifndef BILORA_ENGINE_TRAINER_H
#define BILORA_ENGINE_TRAINER_H

#include "engine/train.h"

typedef enum {
    CMD_PAUSE, CMD_RESUME, CMD_STOP, CMD_STEP_ONCE, CMD_SET, CMD_EVAL, CMD_SNAPSHOT
} TrainerCmdKind;

typedef struct {
    TrainerCmdKind kind;
    char key[32];      /* CMD_SET: a hot TrainConfig field ("split_ratio", ...) */
    char value[64];    /* CMD_SET: its new value; CMD_SNAPSHOT: a session name */
} TrainerCmd;

typedef enum {
    TRAINER_STARTING, TRAINER_RUNNING, TRAINER_PAUSED, TRAINER_DONE, TRAINER_FAILED, TRAINER_STOPPED
} TrainerState;
extern const char *const TRAINER_STATE_NAMES[6];

#define SERIES_MAX 2048   /* points kept per series (older ones thinned 2:1) */
typedef struct {
    int n;
    long step[SERIES_MAX];
    float value[SERIES_MAX];
} Series;

#define SPEC_ROWS_MAX 96
#define SPEC_VALUES_MAX 64
#define EVENTS_MAX 64
#define CHANGES_MAX 64

typedef struct {
    TrainerState state;
    char message[1024];       /* why it paused / failed; the latest warning */
    TrainConfig config;       /* current values, hot changes included */
    int evaluating;           /* the step under way ends with an evaluation */
    long step, total_steps;
    int phase;
    double epoch, examples_per_s, eta_seconds, elapsed_seconds;
    Series loss, upper_loss, hypergrad_norm, train_eval_loss, dev_loss, dev_metric;
    char metric_name[16];
    long spectrum_step;
    int spectrum_rows, spectrum_cols;
    char spectrum_names[SPEC_ROWS_MAX][SPECTRUM_NAME];
    float spectrum[SPEC_ROWS_MAX][SPEC_VALUES_MAX];
    int n_events;             /* ring of the latest event-log lines */
    char events[EVENTS_MAX][256]; /* a longer line ends in "..." */
    int n_changes;
    RunChange changes[CHANGES_MAX];
    size_t trainable_params, total_params;
} TrainerView;

typedef struct Trainer Trainer;

/* Validates cfg (clear errors before any thread starts), then spawns the
 * run's thread; set-up (loading data and model) happens there and shows as
 * TRAINER_STARTING. */
int trainer_start(Trainer **out, const TrainConfig *cfg, char *err, size_t errlen);
/* The same, for a run that is not created from a config but loaded (a
 * saved session): the thread calls load(ctx, callbacks, &run, err, errlen)
 * where trainer_start calls run_create (0 with *out set, or -1 with err),
 * then goes on exactly as trainer_start's thread. ctx must outlive the
 * thread's set-up (until the view leaves TRAINER_STARTING). Until then the
 * view's config is zeroed; afterwards it is run_config(run). Keeps engine/
 * free of sessions/: the front end's loader calls session_load. */
typedef int (*TrainerLoadFn)(void *ctx, const TrainCallbacks *cb, Run **out, char *err, size_t errlen);
int trainer_start_loaded(Trainer **out, TrainerLoadFn load, void *ctx, char *err, size_t errlen);
/* Snapshots are the front end's business (sessions/ sits above engine/):
 * it hands the trainer a function that CMD_SNAPSHOT calls on the run's
 * thread at a step boundary, with the command's value as the name.
 * sessions/session.h's session_snapshot has this shape (ctx: the sessions
 * root, or NULL for the default). Call before the first trainer_send; with
 * none set, snapshots are refused with an event. */
typedef int (*TrainerSnapshotFn)(void *ctx, const char *name, Run *r, char *err, size_t errlen);
void trainer_set_snapshot(Trainer *t, TrainerSnapshotFn fn, void *ctx);
/* Queues a command; applied at the next step boundary. -1 when the queue is
 * full or the command is malformed (err says why). */
int trainer_send(Trainer *t, const TrainerCmd *cmd, char *err, size_t errlen);
/* Copies the latest published view. */
void trainer_read(Trainer *t, TrainerView *out);
/* Waits for the thread to end (send CMD_STOP first to end a running run
 * early). A finished run stays open for CMD_SNAPSHOT and CMD_EVAL until
 * CMD_STOP or this call; a paused one is stopped by this call. */
void trainer_join(Trainer *t);

TrainerView *trainer_view_new(void);
void trainer_view_free(TrainerView *v);

#endif
