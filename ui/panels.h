/* The dashboard: which panel gets which rectangle at a given terminal size,
 * and the panels that are not charts (stats line, progress bar, event log,
 * status line with the keys, the help overlay). dash_draw renders a whole
 * DashView, a plain struct the front end fills from trainer_read, into a
 * grid the size of the terminal.
 *
 *   row 0      stats: state, step, epoch, examples/s, ETA | device, memory
 *   row 1      progress: run title and a bar per run
 *   charts     loss (left half) | task metric (right half)
 *   spectrum   singular-value heatmap (3/5) | histogram of the selected row
 *   events     the newest events that fit
 *   last row   status: keys, or a question (prompt)
 *
 * 80x24 is the smallest size that holds every panel legibly; below it the
 * screen says so instead of drawing a squashed dashboard. */
#ifndef BILORA_UI_PANELS_H
#define BILORA_UI_PANELS_H

#include "ui/chart.h"
#include "ui/grid.h"
#include "ui/heatmap.h"

#define DASH_MIN_W 80
#define DASH_MIN_H 24

typedef struct {
    int too_small;                  /* below 80x24: nothing but a notice */
    Rect stats, progress;           /* one row each */
    Rect loss, metric;              /* boxed charts */
    Rect heat, hist;                /* boxed spectrum panels */
    Rect log;                       /* boxed event log */
    Rect status;                    /* one row */
} DashLayout;

/* Rectangles for a w x h terminal. Pure: the same size, the same layout. */
void dash_layout(int w, int h, DashLayout *l);

typedef enum { DASH_EV_INFO, DASH_EV_EVAL, DASH_EV_CHANGE, DASH_EV_WARN } DashEventKind;

typedef struct {
    long step;                      /* < 0: before the first step */
    DashEventKind kind;
    const char *text;               /* "lower-lr 5e-4 -> 3e-4" */
} DashEvent;

typedef struct {
    const char *label;              /* names the run in compare mode: "lora" */
    const char *state;              /* "running", "paused", "done", "stopped", "error" */
    long step, total_steps;
    double epoch;
    double examples_per_s;          /* < 0: not known yet */
    double eta_s;                   /* < 0: not known yet */
    int colour;                     /* GC_* of this run's curves in compare mode */
} DashRun;

typedef struct {
    const char *title;              /* "roberta-base · RTE · bilora" */
    DashRun runs[2];
    int n_runs;                     /* 2: compare mode */
    const char *device;             /* "cpu", "cuda:0 H100" */
    double mem_bytes;               /* < 0: not known */

    const ChartSeries *loss;        /* lower/train, upper, dev (per run in compare mode) */
    int n_loss;
    const ChartSeries *metric;
    int n_metric;
    const char *metric_name;        /* "accuracy" */
    double smoothing;               /* 0: off; else the EMA weight (0.6) */
    int log_y;

    HeatmapSpec spectrum;           /* rows: adapted matrices; selected: the histogram's */

    const DashEvent *events;        /* oldest first */
    int n_events;

    const char *prompt;             /* non-NULL: a question in place of the keys */
    const char *notice;             /* non-NULL: a short confirmation ("saved session 's1' at step 120")
                                     * at the status line's right end, before the optional keys */
    int show_help;                  /* the help overlay on top */
} DashView;

/* Renders v into g (whose size is the terminal's). */
void dash_draw(Grid *g, const DashView *v, const DrawOpts *o);

/* The keys, as the status line and the help overlay show them. The front
 * end binds the same keys, so the screens and the bindings cannot drift
 * apart if it reads this table. */
typedef struct {
    const char *key;                /* "p", "↑↓" (ASCII mode shows ascii_key) */
    const char *ascii_key;
    const char *label;              /* status line: "pause" */
    const char *help;               /* help overlay: a sentence */
    int in_status;                  /* 0: help only; 1: always; 2: when room */
} DashKey;
const DashKey *dash_keys(int *n);

/* Pieces, exposed for the tests and for the picker and form screens. */
void dash_stats(Grid *g, Rect r, const DashView *v, const DrawOpts *o);
void dash_progress(Grid *g, Rect r, const DashView *v, const DrawOpts *o);
void dash_events(Grid *g, Rect r, const DashEvent *ev, int n, const DrawOpts *o);
void dash_status(Grid *g, Rect r, const DashView *v, const DrawOpts *o);
void dash_help(Grid *g, const DrawOpts *o);
void dash_too_small(Grid *g, const DrawOpts *o);
/* A progress bar of fraction (0..1) across w cells: whole cells and an
 * eighth-block for the remainder in Unicode, '#' and '.' in ASCII. */
void dash_bar(Grid *g, int x, int y, int w, double fraction, int colour, const DrawOpts *o);
/* "4m12s", "1h05m", "37s", "--" */
void dash_format_eta(double s, char *buf, size_t cap);
/* "1,234,567" */
void dash_format_count(long v, char *buf, size_t cap);

#endif
