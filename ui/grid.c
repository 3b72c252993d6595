#include "ui/grid.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

Style style_pick(const DrawOpts *o, int fg, int attr, int mono_attr) {
    if (o->colour) return gstyle(fg, GC_DEFAULT, attr);
    return gstyle(GC_DEFAULT, GC_DEFAULT, (attr & ~GA_DIM) | mono_attr);
}

Style style_pick_bg(const DrawOpts *o, int fg, int bg, int attr) {
    if (o->colour) return gstyle(fg, bg, attr);
    return gstyle(GC_DEFAULT, GC_DEFAULT, (attr & ~GA_DIM) | (bg != GC_DEFAULT ? GA_REVERSE : 0));
}

int grid_init(Grid *g, int w, int h) {
    g->w = g->h = 0;
    g->cells = NULL;
    if (w <= 0 || h <= 0 || w > 10000 || h > 10000) return -1;
    g->cells = calloc((size_t)w * (size_t)h, sizeof(Cell));
    if (!g->cells) return -1;
    g->w = w;
    g->h = h;
    grid_clear(g, grect(0, 0, w, h), gstyle(GC_DEFAULT, GC_DEFAULT, 0));
    return 0;
}

void grid_free(Grid *g) {
    free(g->cells);
    g->cells = NULL;
    g->w = g->h = 0;
}

Cell *grid_at(Grid *g, int x, int y) {
    if (x < 0 || y < 0 || x >= g->w || y >= g->h) return NULL;
    return &g->cells[(size_t)y * (size_t)g->w + (size_t)x];
}

const Cell *grid_cat(const Grid *g, int x, int y) {
    if (x < 0 || y < 0 || x >= g->w || y >= g->h) return NULL;
    return &g->cells[(size_t)y * (size_t)g->w + (size_t)x];
}

/* Before a cell changes, the wide glyph it is part of (if any) loses its
 * other half, which becomes a blank in that half's style. */
static void grid_unwide(Grid *g, int x, int y) {
    Cell *c = grid_at(g, x, y);
    if (!c) return;
    if (c->cp == GRID_CONT) {
        Cell *l = grid_at(g, x - 1, y);
        if (l) l->cp = ' ';
    } else {
        Cell *r = grid_at(g, x + 1, y);
        if (r && r->cp == GRID_CONT) r->cp = ' ';
    }
}

int grid_put(Grid *g, int x, int y, uint32_t cp, Style st) {
    Cell *c = grid_at(g, x, y);
    if (!c) return 0;
    int w = cp_width(cp);
    if (w <= 0) return 0;
    grid_unwide(g, x, y);
    if (w == 2) {
        Cell *r = grid_at(g, x + 1, y);
        if (!r) {
            c->cp = ' ';
            c->st = st;
            return 1;
        }
        grid_unwide(g, x + 1, y);
        c->cp = cp;
        c->st = st;
        r->cp = GRID_CONT;
        r->st = st;
        return 2;
    }
    c->cp = cp;
    c->st = st;
    return 1;
}

void grid_fill(Grid *g, Rect r, uint32_t cp, Style st) {
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++) grid_put(g, x, y, cp, st);
}

void grid_clear(Grid *g, Rect r, Style st) { grid_fill(g, r, ' ', st); }

int utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    *cp = 0xFFFD;
    if (len == 0) return 1;
    unsigned c = u[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 1;
    if ((size_t)n > len) return 1;
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (u[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are malformed:
     * decoding them would let two byte strings draw the same glyph. */
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
    *cp = v;
    return n;
}

int utf8_encode(uint32_t cp, char out[4]) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int cp_width(uint32_t cp) {
    if (cp == GRID_CONT) return 0;
    if (cp < 0x20 || cp == 0x7F) return 1; /* drawn as '?' by grid_text */
    if (cp < 0x7F) return 1;
    if (cp > 0x10FFFF) return 1;
    /* utf8proc follows Unicode's East Asian Width, as wcwidth does on the
     * terminals we target; ambiguous-width glyphs (box drawing, blocks,
     * Braille) count as 1, which is what those terminals draw. */
    int w = utf8proc_charwidth((utf8proc_int32_t)cp);
    return w < 0 ? 1 : w > 2 ? 2 : w;
}

/* The codepoint grid_text draws for cp: controls as '?', since a raw
 * control byte on a terminal moves the cursor and wrecks the screen. */
static uint32_t grid_printable(uint32_t cp) {
    if (cp == '\t') return ' ';
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) return '?';
    return cp;
}

int utf8_width(const char *s) {
    int w = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += (size_t)utf8_decode(s + i, len - i, &cp);
        w += cp_width(grid_printable(cp));
    }
    return w;
}

int grid_text(Grid *g, int x, int y, int maxw, Style st, const char *s) {
    if (!s || maxw <= 0 || y < 0 || y >= g->h) return 0;
    int limit = x + maxw < g->w ? x + maxw : g->w;
    int col = x;
    size_t len = strlen(s);
    for (size_t i = 0; i < len && col < limit;) {
        uint32_t cp;
        i += (size_t)utf8_decode(s + i, len - i, &cp);
        cp = grid_printable(cp);
        int w = cp_width(cp);
        if (w == 0) continue;
        if (col + w > limit) break;
        if (col >= 0) grid_put(g, col, y, cp, st);
        col += w;
    }
    return col - x;
}

int grid_text_fit(Grid *g, int x, int y, int maxw, Style st, const char *s, int unicode) {
    if (!s || maxw <= 0) return 0;
    if (utf8_width(s) <= maxw) return grid_text(g, x, y, maxw, st, s);
    int used = grid_text(g, x, y, maxw - 1, st, s);
    grid_put(g, x + used, y, unicode ? 0x2026 : '~', st);
    return used + 1;
}

int grid_textf(Grid *g, int x, int y, int maxw, Style st, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return grid_text(g, x, y, maxw, st, buf);
}

void grid_hline(Grid *g, int x, int y, int len, uint32_t cp, Style st) {
    for (int i = 0; i < len; i++) grid_put(g, x + i, y, cp, st);
}

void grid_vline(Grid *g, int x, int y, int len, uint32_t cp, Style st) {
    for (int i = 0; i < len; i++) grid_put(g, x, y + i, cp, st);
}

Rect grid_inner(Rect r) {
    Rect in = {r.x + 1, r.y + 1, r.w - 2, r.h - 2};
    if (in.w < 0) in.w = 0;
    if (in.h < 0) in.h = 0;
    return in;
}

void grid_box(Grid *g, Rect r, Style border, const char *title, Style title_st, int unicode) {
    if (r.w < 2 || r.h < 2) return;
    uint32_t h = unicode ? 0x2500 : '-', v = unicode ? 0x2502 : '|';
    uint32_t tl = unicode ? 0x256D : '+', tr = unicode ? 0x256E : '+';
    uint32_t bl = unicode ? 0x2570 : '+', br = unicode ? 0x256F : '+';
    int x1 = r.x + r.w - 1, y1 = r.y + r.h - 1;
    grid_hline(g, r.x + 1, r.y, r.w - 2, h, border);
    grid_hline(g, r.x + 1, y1, r.w - 2, h, border);
    grid_vline(g, r.x, r.y + 1, r.h - 2, v, border);
    grid_vline(g, x1, r.y + 1, r.h - 2, v, border);
    grid_put(g, r.x, r.y, tl, border);
    grid_put(g, x1, r.y, tr, border);
    grid_put(g, r.x, y1, bl, border);
    grid_put(g, x1, y1, br, border);
    /* "╭─ Title ───╮": one rule cell, a space each side of the title, and
     * at least one rule cell before the corner. */
    if (title && *title && r.w >= 7) {
        int room = r.w - 6;
        grid_put(g, r.x + 2, r.y, ' ', border);
        int used = grid_text_fit(g, r.x + 3, r.y, room, title_st, title, unicode);
        grid_put(g, r.x + 3 + used, r.y, ' ', border);
    }
}

uint32_t braille_bit(int dx, int dy) {
    /* Unicode numbers the dots 1-2-3 down the left column, 4-5-6 down the
     * right, then 7 and 8 for the bottom row (added later, hence out of
     * order); dot k is bit k-1. */
    static const uint8_t bits[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    if (dx < 0 || dx > 1 || dy < 0 || dy > 3) return 0;
    return bits[dy][dx];
}

/* A growing string for the dumps. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} GridBuf;

static void gbuf_add(GridBuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static char *gbuf_finish(GridBuf *b) {
    if (b->failed) { free(b->p); return NULL; }
    if (!b->p) gbuf_add(b, "", 0);
    if (b->failed) { free(b->p); return NULL; }
    return b->p;
}

char *grid_dump_text(const Grid *g) {
    GridBuf b = {0};
    for (int y = 0; y < g->h; y++) {
        size_t keep = b.len;
        for (int x = 0; x < g->w; x++) {
            const Cell *c = grid_cat(g, x, y);
            if (c->cp == GRID_CONT) continue;
            char enc[4];
            int n = utf8_encode(c->cp, enc);
            gbuf_add(&b, enc, (size_t)n);
            if (c->cp != ' ') keep = b.len;
        }
        b.len = keep; /* trailing blanks trimmed */
        gbuf_add(&b, "\n", 1);
    }
    return gbuf_finish(&b);
}

static const char *const GRID_COLOUR_NAMES[] = {"default", "black", "red",     "green",
                                                "yellow",  "blue",  "magenta", "cyan", "white"};

static const char *grid_colour_name(int c) {
    return c >= 0 && c <= GC_WHITE ? GRID_COLOUR_NAMES[c] : "?";
}

char *grid_dump_styles(const Grid *g) {
    static const char LETTERS[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    enum { MAXSTY = (int)sizeof(LETTERS) - 1 };
    Style seen[MAXSTY];
    int n_seen = 0;
    GridBuf b = {0};
    for (int y = 0; y < g->h; y++) {
        size_t keep = b.len;
        for (int x = 0; x < g->w; x++) {
            Style st = grid_cat(g, x, y)->st;
            char ch = '.';
            if (!style_eq(st, gstyle(0, 0, 0))) {
                int k = 0;
                while (k < n_seen && !style_eq(seen[k], st)) k++;
                if (k == n_seen && n_seen < MAXSTY) seen[n_seen++] = st;
                ch = k < MAXSTY ? LETTERS[k] : '?';
            }
            gbuf_add(&b, &ch, 1);
            if (ch != '.') keep = b.len;
        }
        b.len = keep;
        gbuf_add(&b, "\n", 1);
    }
    for (int k = 0; k < n_seen; k++) {
        char line[96];
        int n = snprintf(line, sizeof(line), "%c fg=%s", LETTERS[k], grid_colour_name(seen[k].fg));
        if (seen[k].bg) n += snprintf(line + n, sizeof(line) - (size_t)n, " bg=%s", grid_colour_name(seen[k].bg));
        if (seen[k].attr & GA_BOLD) n += snprintf(line + n, sizeof(line) - (size_t)n, " bold");
        if (seen[k].attr & GA_DIM) n += snprintf(line + n, sizeof(line) - (size_t)n, " dim");
        if (seen[k].attr & GA_REVERSE) n += snprintf(line + n, sizeof(line) - (size_t)n, " reverse");
        if (seen[k].attr & GA_UNDERLINE) n += snprintf(line + n, sizeof(line) - (size_t)n, " underline");
        line[n++] = '\n';
        gbuf_add(&b, line, (size_t)n);
    }
    return gbuf_finish(&b);
}
