#include "ui/form.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_ (FIELD_HAS_MIN)
#define MAX_ (FIELD_HAS_MAX)
#define MINO (FIELD_HAS_MIN | FIELD_MIN_OPEN)
#define MAXO (FIELD_HAS_MAX | FIELD_MAX_OPEN)
#define HOT FIELD_HOT

/* Hot: what issue 5 lists as applied at the next step boundary (learning
 * rates, T1/T2, γ1/γ2, hypergradient method, eval and spectrum intervals,
 * split ratio). Everything else needs a new run. */
static const FieldSpec TRAIN_FIELDS[] = {
    {"model", "run", FIELD_STRING, "", 0, 0, FIELD_REQUIRED, NULL, "model directory or name on the asset path"},
    {"task", "run", FIELD_CHOICE, "RTE", 0, 0, 0, "CoLA|SST-2|MRPC|STS-B|QQP|MNLI|QNLI|RTE|WNLI|E2E",
     "GLUE task or E2E"},
    {"data", "run", FIELD_STRING, "", 0, 0, 0, NULL, "task directory (empty: found on the asset path)"},
    {"method", "run", FIELD_CHOICE, "lora", 0, 0, 0, "lora|dora|svd|adalora|bilora|bidora", "adapter method"},
    {"device", "run", FIELD_CHOICE, "cpu", 0, 0, 0, "cpu|auto", "where the run computes"},
    {"seed", "run", FIELD_INT, "42", 0, 9007199254740991.0, MIN_ | MAX_, NULL,
     "seed of initialisation, split, data order and dropout"},

    {"rank", "adapter", FIELD_INT, "8", 1, 1024, MIN_ | MAX_, NULL, "adapter rank r (adalora: the initial rank)"},
    {"alpha", "adapter", FIELD_FLOAT, "16", 0, 0, MINO, NULL, "adapter scale s = alpha / r"},
    {"lora-dropout", "adapter", FIELD_FLOAT, "0", 0, 1, MIN_ | MAXO, NULL, "dropout on the adapter input"},
    {"targets", "adapter", FIELD_LIST, "query,value", 0, 0, FIELD_REQUIRED,
     "query|key|value|attention_output|intermediate|output", "adapted linears"},
    {"lambda", "adapter", FIELD_CHOICE, "auto", 0, 0, 0, "auto|real|softmax|sigmoid",
     "svd forms' λ: auto is softmax for bilora, else real"},
    {"svd-init", "adapter", FIELD_CHOICE, "adalora", 0, 0, 0, "adalora|lora",
     "svd forms' start: adalora (P, Q ~ N(0, 0.02)) or lora (Q like LoRA's A, P = 0)"},

    {"lower-lr", "optimizer", FIELD_FLOAT, "5e-4", 0, 10, MINO | MAXO | HOT, NULL,
     "learning rate of the lower level (single-level methods: the only one)"},
    {"upper-lr", "optimizer", FIELD_FLOAT, "5e-3", 0, 10, MINO | MAXO | HOT, NULL,
     "learning rate of the upper level (bi-level methods)"},
    {"lower-weight-decay", "optimizer", FIELD_FLOAT, "0.01", 0, 0, MIN_, NULL, "AdamW weight decay, lower level"},
    {"upper-weight-decay", "optimizer", FIELD_FLOAT, "0", 0, 0, MIN_, NULL, "AdamW weight decay, upper level"},
    {"warmup-ratio", "optimizer", FIELD_FLOAT, "0.06", 0, 1, MIN_ | MAXO, NULL,
     "fraction of steps of linear warm-up, then linear decay"},
    {"max-grad-norm", "optimizer", FIELD_FLOAT, "1", 0, 0, MIN_, NULL, "gradient-norm clipping per level (0: off)"},
    {"batch-size", "optimizer", FIELD_INT, "32", 1, 4096, MIN_ | MAX_, NULL, "examples per step"},
    {"max-seq-len", "optimizer", FIELD_INT, "128", 8, 4096, MIN_ | MAX_, NULL,
     "tokens per example (longest-first truncation)"},
    {"epochs", "optimizer", FIELD_INT, "3", 0, 100000, MIN_ | MAX_, NULL, "passes over the training set"},
    {"steps", "optimizer", FIELD_INT, "0", 0, 1e12, MIN_ | MAX_, NULL, "global steps (overrides epochs when > 0)"},

    {"eval-every", "evaluation", FIELD_INT, "0", 0, 1e12, MIN_ | MAX_ | HOT, NULL,
     "steps between evaluations (0: every epoch)"},
    {"spectrum-every", "evaluation", FIELD_INT, "0", 0, 1e12, MIN_ | MAX_ | HOT, NULL,
     "steps between spectrum updates (0: with evaluations)"},
    {"eval-train-examples", "evaluation", FIELD_INT, "512", 0, 1e9, MIN_ | MAX_, NULL,
     "training examples scored at each evaluation"},
    {"eval-generate", "evaluation", FIELD_INT, "0", 0, 1e6, MIN_ | MAX_, NULL,
     "E2E: dev inputs generated at each evaluation, scored by BLEU (0: none)"},
    {"overfit-batch", "evaluation", FIELD_INT, "0", 0, 1e9, MIN_ | MAX_, NULL,
     "train on the first N examples only (overfitting check)"},

    {"split-ratio", "bi-level", FIELD_FLOAT, "0.8", 0, 1, MINO | MAXO | HOT, NULL, "|D1| / |train|, D2 the rest"},
    {"lower-steps", "bi-level", FIELD_INT, "1", 1, 1000, MIN_ | MAX_ | HOT, NULL, "T1: lower steps per global step"},
    {"upper-steps", "bi-level", FIELD_INT, "1", 1, 1000, MIN_ | MAX_ | HOT, NULL, "T2: upper steps per global step"},
    {"gamma1", "bi-level", FIELD_FLOAT, "0.1", 0, 0, MIN_ | HOT, NULL, "weight of R1, the orthogonality of P and Q"},
    {"gamma2", "bi-level", FIELD_FLOAT, "0", 0, 0, MIN_ | HOT, NULL, "weight of R2, the entropy of sigmoid λ"},
    {"hypergrad", "bi-level", FIELD_CHOICE, "darts", 0, 0, HOT, "first-order|darts|neumann", "hypergradient method"},
    {"darts-radius", "bi-level", FIELD_FLOAT, "0.01", 0, 0, MINO, NULL, "finite-difference radius: ε = radius / |v|"},
    {"darts-xi", "bi-level", FIELD_FLOAT, "0", 0, 0, MIN_, NULL, "DARTS's factor ξ (0: no factor, i.e. 1, as Betty)"},
    {"neumann-steps", "bi-level", FIELD_INT, "1", 0, 100, MIN_ | MAX_, NULL, "neumann: K terms"},
    {"neumann-alpha", "bi-level", FIELD_FLOAT, "1", 0, 0, MINO, NULL, "neumann: α"},
    {"phase2-steps", "bi-level", FIELD_INT, "0", 0, 1e12, MIN_ | MAX_, NULL,
     "bidora: steps of direction retraining with m fixed"},
    {"phase2-lr", "bi-level", FIELD_FLOAT, "5e-4", 0, 10, MINO | MAXO, NULL, "bidora: learning rate of phase 2"},

    {"target-rank", "adalora", FIELD_INT, "4", 0, 1024, MIN_ | MAX_, NULL, "average rank kept at the end"},
    {"tinit", "adalora", FIELD_FLOAT, "0.1", 0, 1, MIN_ | MAXO, NULL, "fraction of steps before pruning starts"},
    {"tfinal", "adalora", FIELD_FLOAT, "0.2", 0, 1, MIN_ | MAXO, NULL, "fraction of steps at the final budget"},
    {"delta-t", "adalora", FIELD_INT, "10", 1, 1e9, MIN_ | MAX_, NULL, "steps between budget reallocations"},
};

const FieldSpec *form_train_fields(int *n) {
    *n = (int)(sizeof(TRAIN_FIELDS) / sizeof(TRAIN_FIELDS[0]));
    return TRAIN_FIELDS;
}

/* Leading and trailing blanks are not part of a value: "  8 " is 8. */
static void form_trim(const char *s, char *out, size_t cap) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Whether item is one of "a|b|c" (exactly, case included: the flags are
 * case-sensitive, so the form is too). */
static int form_in_choices(const char *choices, const char *item, size_t len) {
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, item, len) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* "a|b|c" -> "a, b, c" for messages. */
static void form_choice_list(const char *choices, char *out, size_t cap) {
    size_t k = 0;
    for (const char *p = choices ? choices : ""; *p && k + 3 < cap; p++) {
        if (*p == '|') { out[k++] = ','; out[k++] = ' '; }
        else out[k++] = *p;
    }
    out[k] = 0;
}

static void form_range_reason(const FieldSpec *fs, char *err, size_t errlen) {
    int lo = fs->flags & FIELD_HAS_MIN, hi = fs->flags & FIELD_HAS_MAX;
    int lo_open = fs->flags & FIELD_MIN_OPEN, hi_open = fs->flags & FIELD_MAX_OPEN;
    if (lo && hi && !lo_open && !hi_open)
        snprintf(err, errlen, "%s must be between %.15g and %.15g", fs->name, fs->min, fs->max);
    else if (lo && hi)
        snprintf(err, errlen, "%s must be %s %.15g and %s %.15g", fs->name, lo_open ? "greater than" : "at least",
                 fs->min, hi_open ? "less than" : "at most", fs->max);
    else if (lo)
        snprintf(err, errlen, "%s must be %s %.15g", fs->name, lo_open ? "greater than" : "at least", fs->min);
    else
        snprintf(err, errlen, "%s must be %s %.15g", fs->name, hi_open ? "less than" : "at most", fs->max);
}

int form_validate(const FieldSpec *fs, const char *text, char *err, size_t errlen) {
    char t[FORM_VALUE_LEN];
    if (strlen(text) >= sizeof(t)) {
        snprintf(err, errlen, "%s is too long (at most %d characters)", fs->name, FORM_VALUE_LEN - 1);
        return -1;
    }
    form_trim(text, t, sizeof(t));
    if (!*t && (fs->flags & FIELD_REQUIRED || fs->type == FIELD_INT || fs->type == FIELD_FLOAT ||
                fs->type == FIELD_CHOICE)) {
        snprintf(err, errlen, "%s is required", fs->name);
        return -1;
    }
    switch (fs->type) {
    case FIELD_INT:
    case FIELD_FLOAT: {
        char *end = NULL;
        errno = 0;
        double v;
        if (fs->type == FIELD_INT) {
            long long x = strtoll(t, &end, 10);
            v = (double)x;
        } else {
            v = strtod(t, &end);
        }
        if (*end || end == t) {
            snprintf(err, errlen, "%s: expected %s, got '%s'", fs->name,
                     fs->type == FIELD_INT ? "a whole number" : "a number", t);
            return -1;
        }
        if (errno == ERANGE || !isfinite(v)) {
            snprintf(err, errlen, "%s: '%s' is out of range", fs->name, t);
            return -1;
        }
        int bad = 0;
        if (fs->flags & FIELD_HAS_MIN) bad |= (fs->flags & FIELD_MIN_OPEN) ? !(v > fs->min) : !(v >= fs->min);
        if (fs->flags & FIELD_HAS_MAX) bad |= (fs->flags & FIELD_MAX_OPEN) ? !(v < fs->max) : !(v <= fs->max);
        if (bad) {
            form_range_reason(fs, err, errlen);
            return -1;
        }
        return 0;
    }
    case FIELD_CHOICE: {
        if (form_in_choices(fs->choices, t, strlen(t))) return 0;
        char list[256];
        form_choice_list(fs->choices, list, sizeof(list));
        snprintf(err, errlen, "%s must be one of %s", fs->name, list);
        return -1;
    }
    case FIELD_LIST: {
        for (const char *p = t; *p;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (!n || !form_in_choices(fs->choices, p, n)) {
                char list[256];
                form_choice_list(fs->choices, list, sizeof(list));
                if (!n) snprintf(err, errlen, "%s: empty item; separate items with single commas", fs->name);
                else snprintf(err, errlen, "%s: '%.*s' is not one of %s", fs->name, (int)n, p, list);
                return -1;
            }
            p += n;
            if (*p == ',') {
                p++;
                if (!*p) {
                    snprintf(err, errlen, "%s: empty item; separate items with single commas", fs->name);
                    return -1;
                }
            }
        }
        return 0;
    }
    case FIELD_STRING:
        return 0;
    }
    snprintf(err, errlen, "%s: unknown field type", fs->name);
    return -1;
}

int form_init(Form *f, const FieldSpec *fields, int n, char *err, size_t errlen) {
    memset(f, 0, sizeof(*f));
    if (n < 0 || n > FORM_MAX_FIELDS) {
        snprintf(err, errlen, "form: %d fields (at most %d)", n, FORM_MAX_FIELDS);
        return -1;
    }
    f->fields = fields;
    f->n = n;
    for (int i = 0; i < n; i++) {
        const FieldSpec *fs = &fields[i];
        char why[256];
        /* An empty default of a required text field means "the user must
         * fill it": the only default allowed to fail its own check. */
        int blank_required = !*fs->def && (fs->flags & FIELD_REQUIRED) &&
                             (fs->type == FIELD_STRING || fs->type == FIELD_LIST);
        if (!blank_required && form_validate(fs, fs->def, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "form: field %s: default '%s' is invalid: %s", fs->name, fs->def, why);
            return -1;
        }
        snprintf(f->value[i], FORM_VALUE_LEN, "%s", fs->def);
    }
    return 0;
}

int form_index(const Form *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->fields[i].name, name) == 0) return i;
    return -1;
}

const char *form_get(const Form *f, const char *name) {
    int i = form_index(f, name);
    return i < 0 ? NULL : f->value[i];
}

static void form_say(Form *f, int is_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void form_say(Form *f, int is_error, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    f->message_is_error = is_error;
}

static int form_locked(Form *f, int i) {
    if (!f->running || (f->fields[i].flags & FIELD_HOT)) return 0;
    form_say(f, 1, "%s needs a new run (it cannot change while this run goes)", f->fields[i].name);
    return 1;
}

/* Stores a validated value. */
static int form_store(Form *f, int i, const char *text) {
    char why[256], t[FORM_VALUE_LEN];
    if (form_validate(&f->fields[i], text, why, sizeof(why)) != 0) {
        form_say(f, 1, "%s", why);
        return -1;
    }
    form_trim(text, t, sizeof(t));
    if (strcmp(t, f->value[i]) == 0) {
        f->message[0] = 0;
        f->message_is_error = 0;
        return 0;
    }
    snprintf(f->value[i], FORM_VALUE_LEN, "%s", t);
    if (f->running) form_say(f, 0, "%s = %s, applied at the next step", f->fields[i].name, t);
    else { f->message[0] = 0; f->message_is_error = 0; }
    return 1;
}

int form_set(Form *f, const char *name, const char *text) {
    int i = form_index(f, name);
    if (i < 0) {
        form_say(f, 1, "no setting named '%s'", name);
        return -1;
    }
    if (form_locked(f, i)) return -1;
    return form_store(f, i, text);
}

void form_move(Form *f, int delta) {
    if (f->n <= 0) return;
    f->editing = 0;
    f->selected = gclamp(f->selected + delta, 0, f->n - 1);
}

int form_edit_begin(Form *f) {
    if (f->n <= 0) return -1;
    if (form_locked(f, f->selected)) return -1;
    f->editing = 1;
    snprintf(f->edit, sizeof(f->edit), "%s", f->value[f->selected]);
    f->cursor = (int)strlen(f->edit);
    f->message[0] = 0;
    f->message_is_error = 0;
    return 0;
}

void form_edit_insert(Form *f, const char *utf8) {
    if (!f->editing) return;
    /* Control bytes (a pasted newline, an escape sequence) are not part
     * of any value: insert the printable runs around them. */
    for (const char *p = utf8; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) {
            char part[FORM_VALUE_LEN];
            size_t n = (size_t)(p - utf8) < sizeof(part) - 1 ? (size_t)(p - utf8) : sizeof(part) - 1;
            memcpy(part, utf8, n);
            part[n] = 0;
            form_edit_insert(f, part);
            form_edit_insert(f, p + 1);
            return;
        }
    size_t len = strlen(f->edit), add = strlen(utf8);
    size_t room = sizeof(f->edit) - 1 - len;
    if (add > room) {
        /* Cut at a codepoint boundary, never inside one, and say so: a cut
         * value would otherwise fail later with a puzzling message. */
        add = room;
        while (add > 0 && ((unsigned char)utf8[add] & 0xC0) == 0x80) add--;
        form_say(f, 1, "a value holds at most %d bytes: the rest was not typed", (int)sizeof(f->edit) - 1);
    }
    memmove(f->edit + f->cursor + add, f->edit + f->cursor, len - (size_t)f->cursor + 1);
    memcpy(f->edit + f->cursor, utf8, add);
    f->cursor += (int)add;
}

void form_edit_left(Form *f) {
    if (!f->editing) return;
    while (f->cursor > 0) {
        f->cursor--;
        if (((unsigned char)f->edit[f->cursor] & 0xC0) != 0x80) break;
    }
}

void form_edit_right(Form *f) {
    if (!f->editing) return;
    int len = (int)strlen(f->edit);
    while (f->cursor < len) {
        f->cursor++;
        if (((unsigned char)f->edit[f->cursor] & 0xC0) != 0x80) break;
    }
}

void form_edit_backspace(Form *f) {
    if (!f->editing || f->cursor == 0) return;
    int end = f->cursor;
    form_edit_left(f);
    memmove(f->edit + f->cursor, f->edit + end, strlen(f->edit + end) + 1);
}

void form_edit_cancel(Form *f) { f->editing = 0; }

int form_edit_commit(Form *f) {
    if (!f->editing) return 0;
    int rc = form_store(f, f->selected, f->edit);
    if (rc >= 0) f->editing = 0;
    return rc;
}

int form_cycle(Form *f, int delta) {
    if (f->n <= 0) return -1;
    const FieldSpec *fs = &f->fields[f->selected];
    if (fs->type != FIELD_CHOICE) return 0;
    if (form_locked(f, f->selected)) return -1;
    /* Find the current choice's position, then step around the ring. */
    const char *items[32];
    size_t lens[32];
    int n = 0, cur = 0;
    for (const char *p = fs->choices; p && *p && n < 32;) {
        const char *bar = strchr(p, '|');
        items[n] = p;
        lens[n] = bar ? (size_t)(bar - p) : strlen(p);
        if (lens[n] == strlen(f->value[f->selected]) && strncmp(p, f->value[f->selected], lens[n]) == 0) cur = n;
        n++;
        p = bar ? bar + 1 : NULL;
    }
    if (!n) return 0;
    int k = ((cur + delta) % n + n) % n;
    char next[FORM_VALUE_LEN];
    snprintf(next, sizeof(next), "%.*s", (int)lens[k], items[k]);
    f->editing = 0;
    return form_store(f, f->selected, next);
}

/* ---- drawing ---------------------------------------------------------- */

/* "integer 1..1024", "number > 0 and < 10", "one of lora, dora, ..." */
static void form_describe(const FieldSpec *fs, char *out, size_t cap) {
    char range[96] = "";
    int lo = fs->flags & FIELD_HAS_MIN, hi = fs->flags & FIELD_HAS_MAX;
    if (lo && hi && !(fs->flags & (FIELD_MIN_OPEN | FIELD_MAX_OPEN)))
        snprintf(range, sizeof(range), " %.15g..%.15g", fs->min, fs->max);
    else {
        int k = 0;
        if (lo) k += snprintf(range + k, sizeof(range) - (size_t)k, " %s %.15g", fs->flags & FIELD_MIN_OPEN ? ">" : ">=", fs->min);
        if (lo && hi) k += snprintf(range + k, sizeof(range) - (size_t)k, ",");
        if (hi) snprintf(range + k, sizeof(range) - (size_t)k, " %s %.15g", fs->flags & FIELD_MAX_OPEN ? "<" : "<=", fs->max);
    }
    char list[256];
    switch (fs->type) {
    case FIELD_INT: snprintf(out, cap, "whole number%s", range); break;
    case FIELD_FLOAT: snprintf(out, cap, "number%s", range); break;
    case FIELD_CHOICE:
        form_choice_list(fs->choices, list, sizeof(list));
        snprintf(out, cap, "one of %s", list);
        break;
    case FIELD_LIST:
        form_choice_list(fs->choices, list, sizeof(list));
        snprintf(out, cap, "comma-separated: %s", list);
        break;
    case FIELD_STRING: snprintf(out, cap, "text"); break;
    }
}

void form_draw(const Form *f, Grid *g, Rect r, const DrawOpts *o) {
    grid_clear(g, r, gstyle(0, 0, 0));
    if (r.w < 20 || r.h < 4 || f->n <= 0) return;
    int list_h = r.h - 3; /* three rows at the bottom: help, what it takes, message */

    /* Display lines: a heading wherever the section changes, then fields.
     * line_field[k] is the field on line k, or -1 - index of its heading. */
    int line_field[2 * FORM_MAX_FIELDS], nl = 0, sel_line = 0;
    for (int i = 0; i < f->n; i++) {
        const char *sec = f->fields[i].section;
        const char *prev = i ? f->fields[i - 1].section : NULL;
        if (sec && (!prev || strcmp(sec, prev) != 0)) line_field[nl++] = -1 - i;
        if (i == f->selected) sel_line = nl;
        line_field[nl++] = i;
    }
    /* Scroll so the selected line sits in view, with its heading when the
     * list has to scroll at all. */
    int first = 0;
    if (nl > list_h) first = gclamp(sel_line - list_h / 2, 0, nl - list_h);

    int name_w = 0;
    for (int i = 0; i < f->n; i++) name_w = gmax(name_w, utf8_width(f->fields[i].name));
    name_w = gmin(name_w, 20);
    int value_w = gclamp(r.w / 5, 10, 24), mark_w = 16;
    int x_name = r.x + 2, x_value = x_name + name_w + 2, x_mark = x_value + value_w + 2, x_help = x_mark + mark_w;

    Style plain = gstyle(0, 0, 0), dim = style_pick(o, GC_DEFAULT, GA_DIM, 0);
    Style heading = style_pick(o, GC_BLUE, GA_BOLD, 0);
    for (int k = 0; k < list_h && first + k < nl; k++) {
        int y = r.y + k, lf = line_field[first + k];
        if (lf < 0) {
            const FieldSpec *fs = &f->fields[-1 - lf];
            /* "── bi-level ──────────" across the name and value columns */
            uint32_t rule = o->unicode ? 0x2500 : '-';
            grid_hline(g, r.x, y, 2, rule, dim);
            int x = r.x + 3;
            x += grid_text(g, x, y, r.x + r.w - x, heading, fs->section) + 1;
            grid_hline(g, x, y, gmin(x_mark - 2, r.x + r.w) - x, rule, dim);
            continue;
        }
        const FieldSpec *fs = &f->fields[lf];
        int sel = lf == f->selected, hot = (fs->flags & FIELD_HOT) != 0;
        int changed = strcmp(f->value[lf], fs->def) != 0;
        int locked = f->running && !hot;
        Style row = sel && !f->editing ? style_pick(o, GC_DEFAULT, GA_REVERSE, 0) : plain;
        if (sel && !f->editing) grid_fill(g, grect(r.x, y, r.w, 1), ' ', row);
        Style name_st = row;
        if (locked) name_st.attr |= o->colour ? GA_DIM : 0;
        if (sel && f->editing) name_st = style_pick(o, GC_DEFAULT, GA_REVERSE, 0);
        if (sel) grid_put(g, r.x, y, o->unicode ? 0x25B8 : '>', row);
        grid_text_fit(g, x_name, y, name_w, name_st, fs->name, o->unicode);

        if (sel && f->editing) {
            /* The input box: underlined, with the cursor cell reversed. */
            Style box = style_pick(o, GC_DEFAULT, GA_UNDERLINE, 0);
            grid_fill(g, grect(x_value, y, value_w, 1), ' ', box);
            char before[FORM_VALUE_LEN];
            snprintf(before, sizeof(before), "%.*s", f->cursor, f->edit);
            /* Keep the cursor in view: show the tail when the text is
             * wider than the box. */
            int bw = utf8_width(before), skip_cols = gmax(0, bw - (value_w - 1));
            const char *s = f->edit;
            while (skip_cols > 0 && *s) {
                uint32_t cp;
                int nb = utf8_decode(s, strlen(s), &cp);
                skip_cols -= cp_width(cp);
                s += nb;
            }
            grid_text(g, x_value, y, value_w, box, s);
            int cx = x_value + utf8_width(before) - (int)(utf8_width(f->edit) - utf8_width(s));
            Cell *c = grid_at(g, gclamp(cx, x_value, x_value + value_w - 1), y);
            if (c) c->st = style_pick(o, GC_DEFAULT, GA_REVERSE, 0);
        } else {
            Style vs = row;
            if (changed) vs.attr |= GA_BOLD;
            if (!sel && changed) vs = style_pick(o, GC_CYAN, GA_BOLD, 0);
            const char *shown = f->value[lf][0] ? f->value[lf] : "(none)";
            if (!f->value[lf][0] && !sel) vs = dim;
            grid_text_fit(g, x_value, y, value_w, vs, shown, o->unicode);
        }

        if (hot) {
            Style hs = sel && !f->editing ? row : style_pick(o, GC_GREEN, 0, 0);
            grid_text(g, x_mark, y, mark_w, hs, o->unicode ? "\u25CF live" : "* live");
        } else if (f->running) {
            grid_text(g, x_mark, y, mark_w, sel && !f->editing ? row : dim, "needs a new run");
        }
        if (x_help < r.x + r.w)
            grid_text_fit(g, x_help, y, r.x + r.w - x_help, sel && !f->editing ? row : dim, fs->help, o->unicode);
    }

    /* The selected field in full: its help, then what it takes, its
     * default and whether it changes live. */
    const FieldSpec *cur = &f->fields[gclamp(f->selected, 0, f->n - 1)];
    char what[320], line[640];
    int x = r.x;
    x += grid_text(g, x, r.y + r.h - 3, r.w, style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), cur->name);
    x += grid_text(g, x, r.y + r.h - 3, r.x + r.w - x, plain, ": ");
    grid_text_fit(g, x, r.y + r.h - 3, r.x + r.w - x, plain, cur->help, o->unicode);
    form_describe(cur, what, sizeof(what));
    snprintf(line, sizeof(line), "%s; default %s; %s", what, *cur->def ? cur->def : "(none)",
             cur->flags & FIELD_HOT ? "changes live" : f->running ? "needs a new run" : "fixed once the run starts");
    grid_text_fit(g, r.x, r.y + r.h - 2, r.w, dim, line, o->unicode);

    if (f->message[0]) {
        Style ms = f->message_is_error ? style_pick(o, GC_RED, GA_BOLD, GA_BOLD) : style_pick(o, GC_GREEN, 0, 0);
        int x = r.x;
        if (f->message_is_error) x += grid_text(g, x, r.y + r.h - 1, r.w, ms, o->unicode ? "\u2717 " : "! ");
        grid_text_fit(g, x, r.y + r.h - 1, r.x + r.w - x, ms, f->message, o->unicode);
    }
}
