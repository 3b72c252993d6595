/* Vertical bars of one row's values (the singular values of the selected
 * matrix), drawn with block eighths (▁▂▃▄▅▆▇█) so a bar rises in steps of
 * an eighth of a row, or in ASCII with '_', '=', '#'. Two readings:
 *   - a histogram: how many values fall in each of equal bins of the
 *     range (for a large rank, where the shape of the distribution is the
 *     story);
 *   - by index: one bar per value, σ1..σr in order, height the value (for
 *     a small rank, where a histogram of 8 values is all ones and zeros
 *     and the decay of the spectrum is the story). */
#ifndef BILORA_UI_HISTOGRAM_H
#define BILORA_UI_HISTOGRAM_H

#include "ui/grid.h"

typedef struct {
    const double *values;
    int n;              /* non-finite values are left out */
    int bins;           /* 0: as many as fit, at most 16 */
    double lo, hi;      /* value range; NaN: min(0, smallest) to the largest */
    int colour;         /* GC_* of the bars */
    int by_index;       /* one bar per value (falls back to a histogram
                           when the values outnumber the columns) */
} HistogramSpec;

/* Draws into r: the axis on the left (the largest count, or value, at the
 * top, 0 at the bottom), the bars, and under them the range of values
 * (histogram) or the indices (by index). */
void histogram_draw(Grid *g, Rect r, const HistogramSpec *h, const DrawOpts *o);

/* Counts values into bins equal parts of [lo, hi] (a value equal to hi
 * goes into the last bin, values outside into none). Returns how many
 * were counted. */
int histogram_count(const double *v, int n, double lo, double hi, int bins, int *counts);

/* The glyph of a bar cell holding `eighths` (0..8) of its height. */
uint32_t histogram_glyph(int eighths, int unicode);

#endif
