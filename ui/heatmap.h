/* Singular values as a heatmap: one row per adapted matrix ("L3.query"),
 * one column per index 1..r, each cell shaded by its value against the
 * largest value shown, with a scale legend underneath. Shading: the block
 * ramp " ░▒▓█" (coloured blue, cyan, yellow, red when colour is on), or
 * the ASCII ramp " .:-=+*#%@". */
#ifndef BILORA_UI_HEATMAP_H
#define BILORA_UI_HEATMAP_H

#include "ui/grid.h"

typedef struct {
    const char *const *row_names;  /* rows of them */
    const double *values;          /* rows x cols, row-major; a non-finite
                                      value is a missing index (ranks can
                                      differ between matrices) */
    int rows, cols;
    int selected;                  /* highlighted row; -1: none */
} HeatmapSpec;

/* Draws into r: an index header when there is room, the rows (scrolled so
 * the selected one shows), and the legend row "0 ░▒▓█ 2.31". When r is
 * narrower than the columns, each cell shows the mean of a group of
 * neighbouring indices and the header names each group's first. */
void heatmap_draw(Grid *g, Rect r, const HeatmapSpec *h, const DrawOpts *o);

/* The shade level of v against vmax: 0 for v <= 0 (and missing), else
 * 1..levels-1 in equal steps, so any positive value shows. */
int heatmap_level(double v, double vmax, int levels);

#endif
