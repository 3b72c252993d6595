/* The setup form: every training flag of `bilora train`, with the same
 * names, its default, its allowed values and a line of help; an editing
 * state (which field, the text being typed, the cursor); validation on
 * entry with a reason the user can act on ("rank must be between 1 and
 * 1024"); and hot vs cold settings. Hot settings can change while a run
 * goes (the trainer applies them at the next step boundary); cold ones
 * (model, task, method, rank, ...) need a new run, and the form says so
 * instead of accepting an edit it cannot honour.
 *
 * The model holds text, exactly what the user typed, and leaves converting
 * it to a TrainConfig to the front end (options_parse does it for the CLI):
 * the form then never shows a value the user did not write. */
#ifndef BILORA_UI_FORM_H
#define BILORA_UI_FORM_H

#include "ui/grid.h"

#include <stddef.h>

typedef enum {
    FIELD_INT,      /* whole number, optional bounds */
    FIELD_FLOAT,    /* number, optional bounds (open or closed) */
    FIELD_CHOICE,   /* one of choices */
    FIELD_STRING,   /* free text */
    FIELD_LIST      /* comma-separated items, each one of choices */
} FieldType;

enum {
    FIELD_HAS_MIN = 1,
    FIELD_HAS_MAX = 2,
    FIELD_MIN_OPEN = 4,   /* min itself is not allowed */
    FIELD_MAX_OPEN = 8,
    FIELD_REQUIRED = 16,  /* text fields: may not be empty */
    FIELD_HOT = 32        /* can change while a run goes */
};

typedef struct {
    const char *name;     /* the flag without "--": "lower-lr" */
    const char *section;  /* heading the field sits under: "bi-level" */
    FieldType type;
    const char *def;      /* default, as text */
    double min, max;      /* FIELD_INT / FIELD_FLOAT, with FIELD_HAS_* */
    unsigned flags;
    const char *choices;  /* FIELD_CHOICE / FIELD_LIST: "lora|dora|svd" */
    const char *help;
} FieldSpec;

#define FORM_MAX_FIELDS 64
#define FORM_VALUE_LEN 128

typedef struct {
    const FieldSpec *fields;
    int n;
    char value[FORM_MAX_FIELDS][FORM_VALUE_LEN];
    int selected;
    int editing;
    char edit[FORM_VALUE_LEN];   /* the text being typed */
    int cursor;                  /* byte offset into edit, on a codepoint start */
    char message[256];           /* the last refusal or confirmation */
    int message_is_error;
    int running;                 /* a run goes: cold fields are locked */
} Form;

/* The fields of `bilora train` (ui/cmd_train.c's table, less --json and
 * the aliases --lr and --weight-decay), with engine/train.c's defaults and
 * train_config_check's ranges. Keep the three in step. */
const FieldSpec *form_train_fields(int *n);

/* Copies the defaults in and checks each against its own field (a table
 * whose default is out of range is a bug worth stopping for). Returns 0,
 * or -1 with a message naming the field. */
int form_init(Form *f, const FieldSpec *fields, int n, char *err, size_t errlen);

/* Checks text against a field: 0, or -1 and a reason in err, written for
 * the user ("rank must be between 1 and 1024", "lower-lr: expected a
 * number, got 'fast'", "method must be one of lora, dora, ..."). */
int form_validate(const FieldSpec *fs, const char *text, char *err, size_t errlen);

int form_index(const Form *f, const char *name);          /* -1: no such field */
const char *form_get(const Form *f, const char *name);    /* NULL: no such field */
/* Sets a field as if typed and committed: -1 (message set) when the
 * value is refused or the field is cold while running, 0 when unchanged,
 * 1 when changed. */
int form_set(Form *f, const char *name, const char *text);

/* Moves the selection (cancels an edit in progress). */
void form_move(Form *f, int delta);
/* Starts editing the selected field with its current text, cursor at the
 * end. -1 (message set) for a cold field while running. */
int form_edit_begin(Form *f);
/* Inserts UTF-8 text at the cursor (cut at the buffer's size, never in
 * the middle of a codepoint). */
void form_edit_insert(Form *f, const char *utf8);
void form_edit_backspace(Form *f);
void form_edit_left(Form *f);
void form_edit_right(Form *f);
void form_edit_cancel(Form *f);
/* Validates the edit: -1 keeps editing, with the reason in message; 0 or
 * 1 (unchanged, changed) stores the value and ends editing. */
int form_edit_commit(Form *f);
/* Steps a choice field to its next (delta > 0) or previous choice. Same
 * returns as form_set. */
int form_cycle(Form *f, int delta);

/* Draws the form into r: a row per field under section headings, the
 * selected one highlighted (scrolled into view), hot fields marked "live",
 * cold ones "needs a new run" while running, values changed from their
 * default in bold; then the selected field's help and the message. */
void form_draw(const Form *f, Grid *g, Rect r, const DrawOpts *o);

#endif
