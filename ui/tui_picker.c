/* The picker: what can be trained here (models and GLUE tasks on the asset
 * search path) and with which method; or, when nothing is there, where it
 * would have to be. The search order is engine/assets.c's: the roots of
 * BILORA_ASSETS, then $BILORA_HOME (default ~/.cache/bilora), then (models
 * only) the Hugging Face cache. assets_list_models walks the models; tasks
 * have no lister there, so this file looks for <root>/data/glue/<TASK>/
 * train.tsv itself, in the same roots and order assets_find_task uses. */
#include "ui/tui.h"

#include "datasets/e2e.h"
#include "datasets/glue.h"
#include "engine/assets.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- scanning ---------------------------------------------------------- */

static void add_root(TuiAssets *a, const char *path, size_t len, const char *why) {
    if (a->n_roots >= TUI_MAX_ROOTS || len == 0 || len >= sizeof(a->roots[0])) return;
    memcpy(a->roots[a->n_roots], path, len);
    a->roots[a->n_roots][len] = 0;
    a->root_why[a->n_roots++] = why;
}

/* The roots as assets.c builds them (it keeps its list private): empty
 * BILORA_ASSETS entries are skipped, not read as ".". */
static void find_roots(TuiAssets *a) {
    a->n_roots = 0;
    const char *env = getenv("BILORA_ASSETS");
    for (const char *p = env; p && *p;) {
        const char *q = strchr(p, ':');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        add_root(a, p, len, "BILORA_ASSETS");
        p = q ? q + 1 : NULL;
    }
    char buf[1024];
    const char *bh = getenv("BILORA_HOME"), *home = getenv("HOME");
    if (bh && *bh) add_root(a, bh, strlen(bh), "BILORA_HOME");
    else if (home && *home) {
        int n = snprintf(buf, sizeof(buf), "%s/.cache/bilora", home);
        if (n > 0 && (size_t)n < sizeof(buf)) add_root(a, buf, (size_t)n, "home (default)");
    }
    const char *v;
    a->hub[0] = 0;
    if ((v = getenv("HF_HUB_CACHE")) && *v) snprintf(a->hub, sizeof(a->hub), "%s", v);
    else if ((v = getenv("HF_HOME")) && *v) snprintf(a->hub, sizeof(a->hub), "%s/hub", v);
    else if (home && *home) snprintf(a->hub, sizeof(a->hub), "%s/.cache/huggingface/hub", home);
}

static void on_model(const char *name, const char *dir, void *ctx) {
    TuiAssets *a = ctx;
    if (a->n_models == a->cap_models) {
        int cap = a->cap_models ? 2 * a->cap_models : 8;
        TuiModel *m = realloc(a->models, sizeof(*m) * (size_t)cap);
        if (!m) return; /* the list just ends here */
        a->models = m;
        a->cap_models = cap;
    }
    TuiModel *m = &a->models[a->n_models++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->dir, sizeof(m->dir), "%s", dir);
    m->params = -1;
    m->bytes = -1;
    char err[512];
    ModelConfig mc;
    if (model_config_load(&mc, dir, err, sizeof(err)) == 0) {
        snprintf(m->type, sizeof(m->type), "%s", mc.model_type);
        m->layers = mc.num_hidden_layers;
        m->hidden = mc.hidden_size;
    } else {
        tui_copy(m->problem, sizeof(m->problem), err);
    }
    /* Parameters from the safetensors header: st_open maps the file and
     * reads only the header, so this stays quick for big models. Integer
     * buffers (BERT's position_ids) are not parameters. */
    char path[1100];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    SafeTensors st;
    if (st_open(&st, path, err, sizeof(err)) == 0) {
        double n = 0;
        for (int i = 0; i < st.n; i++) {
            StDtype d = st.tensors[i].dtype;
            if (d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64) n += (double)st.tensors[i].numel;
        }
        m->params = n;
        m->bytes = (double)st.file_size;
        st_close(&st);
    } else {
        struct stat sb;
        if (stat(path, &sb) == 0) m->bytes = (double)sb.st_size;
        if (!m->problem[0]) tui_copy(m->problem, sizeof(m->problem), err);
    }
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int tui_assets_add_model(TuiAssets *a, const char *dir) {
    for (int i = 0; i < a->n_models; i++)
        if (!strcmp(a->models[i].name, dir) || !strcmp(a->models[i].dir, dir)) return i;
    char cfg[1100];
    snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
    if (!file_exists(cfg)) return -1;
    int n = a->n_models;
    on_model(dir, dir, a);
    return a->n_models > n ? n : -1;
}

void tui_assets_scan(TuiAssets *a) {
    tui_assets_free(a);
    find_roots(a);
    assets_list_models(on_model, a);
    /* models whose config could not be read go last (stable), so the first
     * row, the one selected, is one that can train */
    for (int i = 1, usable = a->n_models && a->models[0].type[0] ? 1 : 0; i < a->n_models; i++) {
        if (!a->models[i].type[0]) continue;
        TuiModel m = a->models[i];
        memmove(&a->models[usable + 1], &a->models[usable], sizeof(m) * (size_t)(i - usable));
        a->models[usable++] = m;
    }
    for (int i = 0; i < 9; i++) {
        const GlueTaskInfo *info = glue_task_at(i);
        if (!info) break;
        for (int r = 0; r < a->n_roots; r++) {
            char dir[1100], train[1200];
            snprintf(dir, sizeof(dir), "%s/data/glue/%s", a->roots[r], info->name);
            snprintf(train, sizeof(train), "%s/train.tsv", dir);
            if (!file_exists(train)) continue;
            TuiTask *t = &a->tasks[a->n_tasks++];
            memset(t, 0, sizeof(*t));
            t->name = info->name;
            tui_copy(t->dir, sizeof(t->dir), dir);
            GlueSplit s;
            char err[512];
            if (glue_load(dir, info, "train", &s, err, sizeof(err)) == 0) {
                t->n_train = s.n;
                glue_split_free(&s);
            } else {
                t->n_train = -1;
                tui_copy(t->problem, sizeof(t->problem), err);
            }
            t->n_dev = -1;
            if (glue_load(dir, info, info->dev_splits[0], &s, err, sizeof(err)) == 0) {
                t->n_dev = s.n;
                glue_split_free(&s);
            }
            break; /* the first root wins, as in assets_find_task */
        }
    }
    for (int r = 0; r < a->n_roots; r++) { /* E2E: data-to-text, for gpt2 models */
        char dir[1100], train[1200];
        snprintf(dir, sizeof(dir), "%s/data/e2e", a->roots[r]);
        snprintf(train, sizeof(train), "%s/%s", dir, e2e_split_file("train"));
        if (!file_exists(train)) continue;
        TuiTask *t = &a->tasks[a->n_tasks++];
        memset(t, 0, sizeof(*t));
        t->name = "E2E";
        t->lm = 1;
        tui_copy(t->dir, sizeof(t->dir), dir);
        E2ESplit s;
        char err[512];
        if (e2e_load(dir, "train", &s, err, sizeof(err)) == 0) {
            t->n_train = s.n;
            e2e_split_free(&s);
        } else {
            t->n_train = -1;
            tui_copy(t->problem, sizeof(t->problem), err);
        }
        t->n_dev = -1;
        if (e2e_load(dir, "dev", &s, err, sizeof(err)) == 0) {
            t->n_dev = s.n;
            e2e_split_free(&s);
        }
        break;
    }
}

int picker_task_fits(const TuiAssets *a, int model, int task) {
    if (task < 0 || task >= a->n_tasks || !a->tasks[task].lm) return 1;
    return model >= 0 && model < a->n_models && !strcmp(a->models[model].type, "gpt2");
}

void tui_assets_free(TuiAssets *a) {
    free(a->models);
    memset(a, 0, sizeof(*a));
}

int picker_usable(const TuiAssets *a) { return a->n_models > 0 && a->n_tasks > 0; }

static const TuiMethod METHODS[] = {
    {"lora", "s\u00B7B\u00B7A, one level",
     "lora: W0 + s\u00B7B\u00B7A; A, B and the head train on the whole training set"},
    {"dora", "magnitude \u00D7 direction",
     "dora: m \u2299 (W0 + s\u00B7B\u00B7A) / row norm; A, B, m and the head on the whole set"},
    {"svd", "P\u00B7diag(\u03BB)\u00B7Q, one level",
     "svd: s\u00B7P\u00B7diag(\u03BB)\u00B7Q (AdaLoRA's layout) with orthogonality penalty; one level"},
    {"adalora", "svd form, rank budget",
     "adalora: the svd form, pruning singular values by importance to target-rank"},
    {"bilora", "bi-level: P,Q on D1; \u03BB on D2",
     "bilora: P, Q and the head on D1, the singular values \u03BB on D2 by hypergradient"},
    {"bidora", "bi-level: B\u00B7A on D1; m on D2",
     "bidora: direction (A, B) on D1, magnitude m on D2, then the direction again on all of D"},
};

const TuiMethod *tui_methods(int *n) {
    *n = (int)(sizeof(METHODS) / sizeof(METHODS[0]));
    return METHODS;
}

/* ---- formatting -------------------------------------------------------- */

void tui_copy(char *dst, size_t cap, const char *src) {
    if (!cap) return;
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

void tui_format_params(double n, char *buf, size_t cap) {
    if (!(n >= 0)) snprintf(buf, cap, "?");
    else if (n >= 1e9) snprintf(buf, cap, "%.1fB", n / 1e9);
    else if (n >= 1e6) snprintf(buf, cap, "%.1fM", n / 1e6);
    else if (n >= 1e3) snprintf(buf, cap, "%.1fk", n / 1e3);
    else snprintf(buf, cap, "%.0f", n);
}

void tui_format_bytes(double n, char *buf, size_t cap) {
    /* A unit up from 1000 of the one below, so the number keeps to four
     * digits and the column to nine cells ("1020.5 KiB" -> "1.0 MiB"). */
    const double k = 1024;
    if (!(n >= 0)) snprintf(buf, cap, "?");
    else if (n >= 1000 * k * k) snprintf(buf, cap, "%.1f GiB", n / (k * k * k));
    else if (n >= 1000 * k) snprintf(buf, cap, "%.1f MiB", n / (k * k));
    else if (n >= 1000) snprintf(buf, cap, "%.1f KiB", n / k);
    else snprintf(buf, cap, "%.0f B", n);
}

/* ---- shared drawing pieces --------------------------------------------- */

void tui_status_keys(Grid *g, Rect r, const char *const *kv, int n, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    Style ks = style_pick_bg(o, GC_BLACK, GC_CYAN, 0), ls = gstyle(0, 0, 0);
    int x = r.x + 1, end = r.x + r.w;
    for (int i = 0; i < n; i++) {
        const char *key = kv[2 * i], *label = kv[2 * i + 1];
        int w = utf8_width(key) + 1 + utf8_width(label);
        if (x + w > end) continue;
        x += grid_text(g, x, r.y, end - x, ks, key);
        x += grid_text(g, x, r.y, end - x, ls, " ");
        x += grid_text(g, x, r.y, end - x, ls, label);
        x += 2;
    }
}

void tui_title_row(Grid *g, int y, const char *left, const char *right, const DrawOpts *o) {
    grid_clear(g, grect(0, y, g->w, 1), gstyle(0, 0, 0));
    int lw = grid_text_fit(g, 1, y, g->w - 2, style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), left, o->unicode);
    if (right && *right) {
        int rw = utf8_width(right);
        if (1 + lw + 2 + rw <= g->w - 1)
            grid_text(g, g->w - 1 - rw, y, rw, style_pick(o, GC_DEFAULT, GA_DIM, 0), right);
    }
}

static Style box_style(int focused, const DrawOpts *o) {
    return focused ? style_pick(o, GC_CYAN, GA_BOLD, GA_BOLD) : style_pick(o, GC_BLUE, 0, 0);
}

/* One list row: a marker, then the caller's columns. focus: the list has
 * the keyboard (selected row reversed); chosen: an earlier stage's pick. */
static Style row_style(int selected, int focus, const DrawOpts *o) {
    if (selected && focus) return style_pick(o, GC_DEFAULT, GA_REVERSE, 0);
    return gstyle(0, 0, 0);
}

static void row_marker(Grid *g, int x, int y, int selected, int focus, int chosen, const DrawOpts *o) {
    if (!selected) return;
    if (focus) grid_put(g, x, y, o->unicode ? 0x25B8 : '>', style_pick(o, GC_DEFAULT, GA_REVERSE, 0));
    else if (chosen) grid_put(g, x, y, o->unicode ? 0x2713 : '*', style_pick(o, GC_GREEN, GA_BOLD, GA_BOLD));
}

/* First row of a list of n shown in h rows, keeping sel in view. */
static int list_first(int sel, int n, int h) {
    if (n <= h || h <= 0) return 0;
    return gclamp(sel - h / 2, 0, n - h);
}

static void draw_models(Grid *g, Rect box, const Picker *p, const TuiAssets *a, const DrawOpts *o) {
    int focus = p->stage == 0;
    char title[64];
    snprintf(title, sizeof(title), "1 Model \u00B7 %d found", a->n_models);
    if (!o->unicode) snprintf(title, sizeof(title), "1 Model - %d found", a->n_models);
    grid_clear(g, box, gstyle(0, 0, 0));
    grid_box(g, box, box_style(focus, o), title, style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), o->unicode);
    Rect in = grid_inner(box);
    if (in.h < 2) return;
    int nw = 8;
    for (int i = 0; i < a->n_models; i++) nw = gmax(nw, utf8_width(a->models[i].name));
    nw = gmin(nw, gmax(12, in.w / 3));
    /* Columns: name, type, layers, hidden, params, size, folder (as room allows). */
    int x_name = in.x + 2, x_type = x_name + nw + 2, x_layers = x_type + 9, x_hidden = x_layers + 7,
        x_params = x_hidden + 7, x_size = x_params + 9, x_dir = x_size + 10;
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    int y = in.y;
    grid_text(g, x_name, y, nw, dim, "name");
    grid_text(g, x_type, y, 8, dim, "type");
    grid_text(g, x_layers, y, 6, dim, "layers");
    grid_text(g, x_hidden, y, 6, dim, "hidden");
    grid_text(g, x_params + 2, y, 6, dim, "params");
    grid_text(g, x_size + 5, y, 4, dim, "size");
    if (x_dir + 6 < in.x + in.w) grid_text(g, x_dir, y, in.x + in.w - x_dir, dim, "folder");
    int rows = in.h - 1, first = list_first(p->sel[0], a->n_models, rows);
    for (int k = 0; k < rows && first + k < a->n_models; k++) {
        int i = first + k;
        const TuiModel *m = &a->models[i];
        y = in.y + 1 + k;
        int sel = i == p->sel[0];
        Style st = row_style(sel, focus, o);
        if (sel && focus) grid_fill(g, grect(in.x, y, in.w, 1), ' ', st);
        row_marker(g, in.x, y, sel, focus, p->stage > 0, o);
        Style ns = st;
        ns.attr |= GA_BOLD;
        grid_text_fit(g, x_name, y, nw, ns, m->name, o->unicode);
        if (m->type[0]) {
            char b[32];
            grid_text_fit(g, x_type, y, 8, st, m->type, o->unicode);
            grid_textf(g, x_layers, y, 6, st, "%6d", m->layers);
            grid_textf(g, x_hidden, y, 6, st, "%6d", m->hidden);
            tui_format_params(m->params, b, sizeof(b));
            grid_textf(g, x_params, y, 8, st, "%8s", b);
        } else {
            grid_text_fit(g, x_type, y, x_params + 8 - x_type, sel && focus ? st : style_pick(o, GC_RED, 0, 0),
                          "unreadable config", o->unicode);
        }
        char sz[32];
        tui_format_bytes(m->bytes, sz, sizeof(sz));
        grid_textf(g, x_size, y, 9, st, "%9s", sz);
        if (x_dir + 6 < in.x + in.w)
            grid_text_fit(g, x_dir, y, in.x + in.w - x_dir, sel && focus ? st : dim, m->dir, o->unicode);
    }
}

static void draw_tasks(Grid *g, Rect box, const Picker *p, const TuiAssets *a, const DrawOpts *o) {
    int focus = p->stage == 1;
    char title[64];
    snprintf(title, sizeof(title), "2 Task");
    grid_clear(g, box, gstyle(0, 0, 0));
    grid_box(g, box, box_style(focus, o), title, style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), o->unicode);
    Rect in = grid_inner(box);
    int first = list_first(p->sel[1], a->n_tasks, in.h);
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    for (int k = 0; k < in.h && first + k < a->n_tasks; k++) {
        int i = first + k, y = in.y + k, sel = i == p->sel[1];
        const TuiTask *t = &a->tasks[i];
        Style st = row_style(sel, focus, o);
        if (sel && focus) grid_fill(g, grect(in.x, y, in.w, 1), ' ', st);
        row_marker(g, in.x, y, sel, focus, p->stage > 1, o);
        Style ns = st;
        ns.attr |= GA_BOLD;
        int x = in.x + 2;
        grid_text(g, x, y, 6, ns, t->name);
        x += 7;
        if (t->n_train < 0) {
            grid_text_fit(g, x, y, in.x + in.w - x, sel && focus ? st : style_pick(o, GC_RED, 0, 0),
                          t->lm ? "trainset.csv does not load" : "train.tsv does not load", o->unicode);
            continue;
        }
        if (!picker_task_fits(a, p->sel[0], i)) { /* E2E with an encoder */
            grid_text_fit(g, x, y, in.x + in.w - x, sel && focus ? st : dim, "needs a gpt2 model",
                          o->unicode);
            continue;
        }
        char n[32], d[32];
        dash_format_count(t->n_train, n, sizeof(n));
        x += grid_textf(g, x, y, in.x + in.w - x, st, "%7s train", n) + 2;
        if (t->n_dev >= 0) {
            dash_format_count(t->n_dev, d, sizeof(d));
            grid_textf(g, x, y, in.x + in.w - x, st, "%5s dev", d);
        } else {
            grid_text(g, x, y, in.x + in.w - x, sel && focus ? st : dim, "no dev");
        }
    }
}

static void draw_methods(Grid *g, Rect box, const Picker *p, const DrawOpts *o) {
    int focus = p->stage == 2, n;
    const TuiMethod *m = tui_methods(&n);
    grid_clear(g, box, gstyle(0, 0, 0));
    grid_box(g, box, box_style(focus, o), "3 Method", style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), o->unicode);
    Rect in = grid_inner(box);
    int first = list_first(p->sel[2], n, in.h);
    Style dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    for (int k = 0; k < in.h && first + k < n; k++) {
        int i = first + k, y = in.y + k, sel = i == p->sel[2];
        Style st = row_style(sel, focus, o);
        if (sel && focus) grid_fill(g, grect(in.x, y, in.w, 1), ' ', st);
        row_marker(g, in.x, y, sel, focus, 0, o);
        Style ns = st;
        ns.attr |= GA_BOLD;
        grid_text(g, in.x + 2, y, 8, ns, m[i].name);
        grid_text_fit(g, in.x + 11, y, in.w - 11, sel && focus ? st : dim, m[i].summary, o->unicode);
    }
}

void picker_draw_scanning(Grid *g, const DrawOpts *o) {
    grid_clear(g, grect(0, 0, g->w, g->h), gstyle(0, 0, 0));
    tui_title_row(g, 0, "bilora", NULL, o);
    const char *msg = "looking for models and tasks on the asset path...";
    grid_text(g, gmax(0, (g->w - utf8_width(msg)) / 2), g->h / 2, g->w, style_pick(o, GC_DEFAULT, GA_DIM, 0), msg);
}

/* Nothing to pick from: say so, list every place that was searched (the
 * same order the engine searches), and how to fill one. */
static void draw_empty(Grid *g, const TuiAssets *a, const DrawOpts *o) {
    Style bold = style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    Style warn = style_pick(o, GC_YELLOW, GA_BOLD, GA_BOLD), plain = gstyle(0, 0, 0);
    Style code = style_pick(o, GC_CYAN, 0, 0);
    tui_title_row(g, 0, "bilora \u00B7 nothing to train on yet", NULL, o);
    if (!o->unicode) tui_title_row(g, 0, "bilora - nothing to train on yet", NULL, o);
    int y = 2, w = g->w - 4, x = 2;
    char line[1400];
    if (a->n_models == 0) {
        grid_text(g, x, y++, w, warn, "No models found.");
        grid_text(g, x, y++, w, plain, "Models are looked for, in this order, in:");
    } else {
        snprintf(line, sizeof(line), "%d model%s found, but no GLUE task.", a->n_models, a->n_models == 1 ? "" : "s");
        grid_text(g, x, y++, w, warn, line);
        grid_text(g, x, y++, w, plain, "Tasks are looked for, in this order, in:");
    }
    /* Which setting made each place, then the place, given all the room
     * left: a path is the one thing here the user needs whole. */
    int lab = 15, px = x + 2 + lab;
    for (int r = 0; r < a->n_roots && y < g->h - 8; r++) {
        if (a->n_models == 0) snprintf(line, sizeof(line), "%s/models/<name>/", a->roots[r]);
        else snprintf(line, sizeof(line), "%s/data/glue/<TASK>/train.tsv", a->roots[r]);
        grid_text(g, x + 2, y, lab - 1, dim, a->root_why[r]);
        grid_text_fit(g, px, y, g->w - 1 - px, code, line, o->unicode);
        y++;
    }
    if (a->n_roots == 0) grid_text(g, x + 2, y++, w, dim, "(no roots: BILORA_ASSETS and HOME are both unset)");
    if (a->n_models == 0 && a->hub[0] && y < g->h - 8) {
        snprintf(line, sizeof(line), "%s/models--ORG--NAME/", a->hub);
        grid_text(g, x + 2, y, lab - 1, dim, "HF cache");
        grid_text_fit(g, px, y, g->w - 1 - px, code, line, o->unicode);
        y++;
    }
    if (a->n_models == 0)
        grid_text(g, x, y++, w, dim, "A model folder holds config.json and model.safetensors.");
    else
        grid_text(g, x, y++, w, dim, "TASK is one of CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI.");
    if (a->n_models == 0 && a->n_tasks > 0 && y < g->h - 6) {
        snprintf(line, sizeof(line), "(%d task%s found.)", a->n_tasks, a->n_tasks == 1 ? "" : "s");
        grid_text(g, x, y++, w, dim, line);
    }
    y++;
    if (y < g->h - 4) {
        grid_text(g, x, y++, w, bold, "To get some:");
        grid_text(g, x + 2, y++, w - 2, code, "bilora fetch bert-tiny glue/RTE");
        grid_text(g, x, y++, w, dim, "or point BILORA_ASSETS at folders holding models/ and data/glue/,");
        grid_text(g, x, y++, w, dim, "then press r to look again.");
    }
    const char *keys[] = {"r", "look again", "o", "saved runs", "q", "quit"};
    tui_status_keys(g, grect(0, g->h - 1, g->w, 1), keys, 3, o);
}

void picker_draw(Grid *g, const Picker *p, const TuiAssets *a, const DrawOpts *o) {
    if (g->w < DASH_MIN_W || g->h < DASH_MIN_H) {
        dash_too_small(g, o);
        return;
    }
    grid_clear(g, grect(0, 0, g->w, g->h), gstyle(0, 0, 0));
    if (!picker_usable(a)) {
        draw_empty(g, a, o);
        return;
    }
    int nm;
    tui_methods(&nm);
    const char *steps = p->stage == 0 ? "step 1 of 3: model" : p->stage == 1 ? "step 2 of 3: task" : "step 3 of 3: method";
    tui_title_row(g, 0, o->unicode ? "bilora \u00B7 new run" : "bilora - new run", steps, o);

    /* Models on top (a header row and one row each), tasks and methods
     * side by side under them; a long model list gets the rows the band
     * leaves and scrolls. */
    int band = gmax(gmin(a->n_tasks, 10), nm) + 2;
    int top = 1, bottom = g->h - 2; /* rows [top, bottom): boxes; then the about line and the keys */
    int models_h = gclamp(a->n_models + 3, 4, bottom - top - band);
    int tasks_w = gmax(36, g->w * 2 / 5);
    draw_models(g, grect(0, top, g->w, models_h), p, a, o);
    draw_tasks(g, grect(0, top + models_h, tasks_w, band), p, a, o);
    draw_methods(g, grect(tasks_w, top + models_h, g->w - tasks_w, band), p, o);

    /* About the focused choice. */
    char about[1400] = "";
    const TuiMethod *m = tui_methods(&nm);
    if (p->stage == 0 && p->sel[0] < a->n_models) {
        const TuiModel *md = &a->models[p->sel[0]];
        if (md->problem[0]) snprintf(about, sizeof(about), "%s: %s", md->name, md->problem);
        else snprintf(about, sizeof(about), "%s: %s, %d layers, hidden %d, in %s", md->name, md->type, md->layers,
                      md->hidden, md->dir);
    } else if (p->stage == 1 && p->sel[1] < a->n_tasks) {
        const TuiTask *t = &a->tasks[p->sel[1]];
        if (t->problem[0]) snprintf(about, sizeof(about), "%s", t->problem);
        else if (!picker_task_fits(a, p->sel[0], p->sel[1]))
            snprintf(about, sizeof(about), "%s is data-to-text generation: it needs a gpt2 (decoder) model, "
                     "and %s is a %s encoder", t->name, a->models[p->sel[0]].name, a->models[p->sel[0]].type);
        else if (t->lm)
            snprintf(about, sizeof(about), "%s: meaning representation -> restaurant description; the loss "
                     "is on the reference tokens, in %s", t->name, t->dir);
        else snprintf(about, sizeof(about), "%s in %s", t->name, t->dir);
    } else if (p->stage == 2) {
        snprintf(about, sizeof(about), "%s", m[gclamp(p->sel[2], 0, nm - 1)].about);
    }
    grid_text_fit(g, 1, g->h - 2, g->w - 2, style_pick(o, GC_DEFAULT, GA_DIM, 0), about, o->unicode);

    const char *uni[] = {"\u2191\u2193", "choose", "\u23CE", p->stage == 2 ? "set up the run" : "next",
                         "\u2190", "back", "r", "look again", "o", "saved runs", "q", "quit"};
    const char *asc[] = {"up/dn", "choose", "enter", p->stage == 2 ? "set up the run" : "next",
                         "left", "back", "r", "look again", "o", "saved runs", "q", "quit"};
    tui_status_keys(g, grect(0, g->h - 1, g->w, 1), o->unicode ? uni : asc, 6, o);
}
