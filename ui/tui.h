/* The workbench: `bilora` with no arguments (or `bilora tui [flags]`).
 *
 * Three screens over one loop:
 *   picker     models and GLUE tasks found on the asset search path, then a
 *              method (or, when nothing is found, where assets are looked for)
 *   setup      the form of every `bilora train` flag (ui/form.h)
 *   dashboard  panels.h's dash_draw fed from trainer_read every ~100 ms;
 *              one run, or two side by side in compare mode
 * The trainer runs in its own thread (engine/trainer.h); this front end
 * only sends commands and reads published copies, so drawing never holds
 * the run back.
 *
 * The code is split so that only ui/tui_screen.c talks to ncurses: the
 * screens render into a Grid (ui/grid.h) and tui_screen.c copies the grid
 * to the terminal and turns keys into TuiKey. Everything else is plain C
 * over plain structs. */
#ifndef BILORA_UI_TUI_H
#define BILORA_UI_TUI_H

#include "engine/trainer.h"
#include "ui/grid.h"
#include "ui/panels.h"

#include <stddef.h>
#include <stdint.h>

int cmd_tui(int argc, char **argv);

/* ---- the rest is shared between ui/tui*.c ------------------------------ */

/* ---- assets: what the picker offers (ui/tui_picker.c) ---- */

typedef struct {
    char name[256];             /* as assets_find_model resolves it: "roberta-base", "org/name" */
    char dir[1024];
    char type[32];              /* config.json's model_type; "" when unreadable */
    int layers, hidden;
    double params;              /* floating-point tensors' elements; < 0: unknown */
    double bytes;               /* model.safetensors' size */
    char problem[160];          /* why type/params are unknown */
} TuiModel;

typedef struct {
    const char *name;           /* canonical name: "SST-2", "E2E" */
    char dir[1024];
    int n_train, n_dev;         /* n_dev < 0: no dev file */
    char problem[160];          /* the train file did not load: why */
    int lm;                     /* data-to-text (E2E): needs a gpt2 model */
} TuiTask;

#define TUI_MAX_ROOTS 16
typedef struct {
    TuiModel *models;
    int n_models, cap_models;
    TuiTask tasks[10];          /* the nine GLUE tasks, then E2E */
    int n_tasks;
    /* Where things are looked for, in assets_find_* order, for the screen
     * shown when nothing is found. */
    char roots[TUI_MAX_ROOTS][1024];
    const char *root_why[TUI_MAX_ROOTS]; /* "BILORA_ASSETS", "$BILORA_HOME", ... */
    int n_roots;
    char hub[1024];             /* the Hugging Face cache; "" when HOME is unset */
} TuiAssets;

/* Scans the search path (environment read now). Reads every config.json,
 * safetensors header and train.tsv found, so it takes a moment on big
 * tasks: the caller draws a "looking" screen first. */
void tui_assets_scan(TuiAssets *a);
void tui_assets_free(TuiAssets *a);

/* The methods offered, in the order the picker lists them. */
typedef struct {
    const char *name, *summary, *about;
} TuiMethod;
const TuiMethod *tui_methods(int *n);

typedef struct {
    int stage;                  /* 0 model, 1 task, 2 method */
    int sel[3];
} Picker;

/* The picker: three lists, the focused one highlighted, a line about the
 * selection and the keys. When a list is empty, the screen that says
 * where assets are looked for instead. */
void picker_draw(Grid *g, const Picker *p, const TuiAssets *a, const DrawOpts *o);
/* Whether the picker has something to pick from (models and tasks). */
int picker_usable(const TuiAssets *a);
/* A model given as a directory (--model DIR) joins the list if it is not
 * on it; its index, or -1 when dir holds no config.json. */
int tui_assets_add_model(TuiAssets *a, const char *dir);
/* 0 when task (an index into a->tasks) cannot train on model: E2E needs a gpt2. */
int picker_task_fits(const TuiAssets *a, int model, int task);
/* "looking for models and tasks…" while tui_assets_scan works. */
void picker_draw_scanning(Grid *g, const DrawOpts *o);

/* A status line of keys, as dash_status draws them: kv holds n pairs of
 * key and label ("q", "quit"); pairs that do not fit are left out. */
void tui_status_keys(Grid *g, Rect r, const char *const *kv, int n, const DrawOpts *o);
/* The title row of the picker and form screens: bold text on the left,
 * dim text on the right when it fits. */
void tui_title_row(Grid *g, int y, const char *left, const char *right, const DrawOpts *o);

/* Copies src into dst (cap bytes), cut where needed at a UTF-8 codepoint
 * boundary: messages from deeper layers can be longer than a line. */
void tui_copy(char *dst, size_t cap, const char *src);

/* Human sizes: "124.6M", "4.4k" (params); "476 MiB" (bytes). */
void tui_format_params(double n, char *buf, size_t cap);
void tui_format_bytes(double n, char *buf, size_t cap);

/* ---- the dashboard's view, built from the trainers' (ui/tui_dash.c) ---- */

/* The UI's own event lines (a refused key, a compare run started), shown
 * with the trainers' events. */
#define TUI_UI_EVENTS 32
typedef struct {
    long step;
    DashEventKind kind;
    char text[256];
} TuiEvent;

typedef struct {
    const TrainerView *view;    /* NULL: no run in this slot */
    const char *label;          /* the method: "lora" */
    int colour;                 /* compare mode: GC_BLUE, GC_MAGENTA */
    /* The values the run started with, as text by TrainConfig key
     * ("lower_lr" -> "5e-4"), for "lower-lr 5e-4 -> 1e-4" in the log. */
    const char *(*initial)(void *ctx, const char *key);
    void *ctx;
} TuiRunIn;

typedef struct {
    TuiRunIn runs[2];
    int n_runs;
    const char *title;
    const char *device;
    double mem_bytes;
    double smoothing;
    int log_y;
    int selected;               /* spectrum row */
    const TuiEvent *ui_events;
    int n_ui_events;
    const char *prompt;
    const char *notice;         /* a confirmation for the status line; NULL: none */
    int show_help;
    int unicode;                /* arrows in the log: "→" or "->" */
    int log_width;              /* columns of an event's text (warnings wrap) */
} TuiDashIn;

/* Owns the arrays a DashView points into; rebuilt every frame. */
typedef struct {
    double *x, *y;              /* series storage */
    size_t cap, used;
    ChartSeries loss[6], metric[2];
    char names[8][48];
    char spec_names[2 * SPEC_ROWS_MAX][SPECTRUM_NAME + 20];
    const char *spec_ptr[2 * SPEC_ROWS_MAX];
    double spec[2 * SPEC_ROWS_MAX * SPEC_VALUES_MAX];
    DashEvent events[2 * (EVENTS_MAX + 2) + TUI_UI_EVENTS];
    char ev_text[2 * (EVENTS_MAX + 2) + TUI_UI_EVENTS][200];
    char state[2][16];
    char metric_name[24];
} TuiDashBuf;

TuiDashBuf *tui_dash_buf_new(void);
void tui_dash_buf_free(TuiDashBuf *b);
/* Fills v (pointing into b) from the inputs. */
void tui_dash_build(TuiDashBuf *b, const TuiDashIn *in, DashView *v);
/* Spectrum rows the view will have (both runs in compare mode). */
int tui_dash_rows(const TuiDashIn *in);

/* A trainer event line, read: its step ("step 120: ..."), kind and the
 * text without the step. out_key/out_value: a live change's TrainConfig
 * key and value ("" otherwise). */
DashEventKind tui_event_parse(const char *line, long *step, const char **text, char *out_key, size_t keycap,
                              char *out_value, size_t valcap);

/* ---- the terminal (ui/tui_screen.c: the only file with ncurses) ---- */

typedef enum {
    TK_NONE, TK_CHAR, TK_UP, TK_DOWN, TK_LEFT, TK_RIGHT, TK_ENTER, TK_ESC, TK_BACKSPACE, TK_DELETE,
    TK_PGUP, TK_PGDN, TK_HOME, TK_END, TK_TAB, TK_CLEAR_LINE, TK_RESIZE,
    TK_INTERRUPT                /* ^C: quit, asking first when a run would be lost */
} TuiKeyCode;

typedef struct {
    TuiKeyCode code;
    uint32_t ch;                /* TK_CHAR: the codepoint */
    char text[8];               /* TK_CHAR: as UTF-8 */
} TuiKey;

typedef struct TuiScreen TuiScreen;

/* Opens the terminal (newterm on stdin/stdout). force_ascii / force_mono
 * narrow the DrawOpts the terminal allows: Unicode when the locale's
 * codeset is UTF-8, colour when has_colors() and NO_COLOR is unset or
 * empty. -1 with a reason (not a terminal, unknown TERM). */
int screen_open(TuiScreen **out, int force_ascii, int force_mono, DrawOpts *opts, char *err, size_t errlen);
void screen_close(TuiScreen *s);
void screen_size(TuiScreen *s, int *w, int *h);
/* Copies g to the terminal: only the cells that differ from the last
 * blit, everything after a resize. */
void screen_blit(TuiScreen *s, const Grid *g);
/* Waits up to timeout_ms (< 0: forever) for a key. 0 on timeout. */
int screen_key(TuiScreen *s, int timeout_ms, TuiKey *k);

#endif
