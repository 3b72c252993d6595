/* What a headless run prints, shared by `bilora train` and `bilora resume`:
 * progress lines on stderr (a bar that redraws on a terminal, every 5% of the
 * steps otherwise), or with json set one JSON event per line on stdout
 * (info, step, eval, spectrum, done, error). */
#ifndef BILORA_UI_TRAIN_OUTPUT_H
#define BILORA_UI_TRAIN_OUTPUT_H

#include "engine/train.h"

typedef struct {
    int json;
    int tty;              /* stderr is a terminal: redraw the bar in place */
    long last_line_step;  /* the step of the last progress line (no tty) */
    int bar_open;         /* tty: the bar is drawn and its line not ended */
} TrainOutput;

/* Callbacks that print to o (which must outlive the run). */
TrainCallbacks train_output_callbacks(TrainOutput *o);
/* A set-up line, as on_info prints it. */
void train_output_info(TrainOutput *o, const char *message);
/* The error a run ended with: an "error" event under json, and
 * "bilora COMMAND: err" on stderr. */
void train_output_error(TrainOutput *o, const char *command, const char *err);

#endif
