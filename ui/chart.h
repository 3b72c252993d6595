/* Line charts of scalar series over steps, drawn into a Grid: losses and
 * task metrics on the dashboard, two runs overlaid in compare mode.
 *
 * As TensorBoard's scalar charts: several named series, nice round ticks,
 * optional log-scale y, smoothing by an exponential moving average with
 * bias correction (weight 0.6 by default) with the raw series drawn faintly
 * behind the smoothed one. Plotted in Braille (a cell holds 2 x 4 dots, so
 * two samples across per cell, as btop draws) or, in ASCII mode, one point
 * per cell with a glyph per series. Non-finite samples (and, on a log
 * scale, non-positive ones) are skipped: the line breaks there. */
#ifndef BILORA_UI_CHART_H
#define BILORA_UI_CHART_H

#include "ui/grid.h"

typedef struct {
    const char *name;     /* legend label: "train", "dev", "lora dev" */
    const double *x;      /* steps, ascending; NULL: 0, 1, 2, ... */
    const double *y;
    int n;
    int colour;           /* GC_* */
    int mono_attr;        /* GA_* that tells this series apart without colour */
    char ascii;           /* its glyph in ASCII mode ('*', '+', 'o') */
} ChartSeries;

typedef struct {
    const ChartSeries *series;
    int n_series;
    double smoothing;     /* EMA weight in [0, 1); 0: raw only */
    int log_y;
    double x_lo, x_hi;    /* x range; NaN: the data's (a live run passes 0 and
                             its total steps, so the chart fills as it runs) */
    int legend_values;    /* legend shows each series' last raw value */
    const char *empty_text; /* NULL: "no data yet" */
} ChartSpec;

/* Draws the chart into r: a legend row, the plot with a y axis (tick
 * labels on the left), an x axis and its tick labels. */
void chart_draw(Grid *g, Rect r, const ChartSpec *c, const DrawOpts *o);

/* TensorBoard's smoothing, one sample at a time: acc = w·acc + (1−w)·v and
 * the output acc / (1 − w^k) after k finite samples; the division removes
 * the bias toward the initial 0, so the first output equals the first
 * sample. A non-finite sample gives NaN and leaves the state alone. */
typedef struct {
    double weight, acc;
    long k;
} Ema;
void ema_init(Ema *e, double weight);
double ema_push(Ema *e, double v);
/* The whole series at once (out may equal y). */
void chart_smooth(const double *y, int n, double weight, double *out);

/* Nice round ticks (steps of 1, 2 or 5 times a power of ten) covering
 * [lo, hi]: the first tick <= lo, the last >= hi, at most max_ticks (>= 2)
 * of them, as dense as that allows. Writes them to out (cap entries), the
 * step to *step; returns the count. */
int chart_ticks(double lo, double hi, int max_ticks, double *out, int cap, double *step);
/* Nice ticks inside [lo, hi] (the range is not widened to them), at most
 * max_ticks, as dense as that allows. The charts use these: a terminal
 * chart has too few rows to spend any on range past the data. */
int chart_ticks_within(double lo, double hi, int max_ticks, double *out, int cap, double *step);
/* Ticks for a log axis inside [lo, hi] (both > 0): decades, else 1-2-5 or
 * 1..9 per decade, whichever is densest within max_ticks; for a range too
 * narrow for those, linear ticks, and *linear_step (may be NULL) is their
 * step, else 0: labels need it ("0.36", "0.38", not "0.4" twice). Not
 * expanded. Returns the count. */
int chart_log_ticks(double lo, double hi, int max_ticks, double *out, int cap, double *linear_step);
/* A tick label: as many decimals as the step needs ("0.30", "0.35"),
 * thousands as k ("1.5k", "12k"), tiny or huge values in short
 * exponent form ("5e-4"). */
void chart_tick_label(double v, double step, char *buf, size_t cap);

#endif
