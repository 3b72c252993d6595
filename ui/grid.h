/* A character grid: the canvas every screen of the workbench draws into.
 *
 * Drawing code never talks to the terminal. It takes a plain struct, renders
 * it into a Grid of width x height cells (one Unicode codepoint and one Style
 * each), and a front end copies the grid to the screen (ncurses: for every
 * cell that is not GRID_CONT, encode cp as UTF-8 and add it with the cell's
 * attributes). The same grid dumps to text, which is how the tests compare
 * screens against golden files without a terminal.
 *
 * Wide glyphs (CJK, some symbols) take two cells: the left one holds the
 * codepoint, the right one holds GRID_CONT. Writing over either half of a
 * wide glyph blanks the other half, so the grid never holds half a glyph. */
#ifndef BILORA_UI_GRID_H
#define BILORA_UI_GRID_H

#include <stddef.h>
#include <stdint.h>

/* Colours: the eight ANSI colours plus the terminal's default. Prefixed GC_
 * because ncurses defines COLOR_* and the front end includes both. */
enum { GC_DEFAULT = 0, GC_BLACK, GC_RED, GC_GREEN, GC_YELLOW, GC_BLUE, GC_MAGENTA, GC_CYAN, GC_WHITE };

/* Attributes, combinable. DIM is how the raw series of a smoothed chart is
 * drawn "faintly behind"; in the colour-free mode DIM is dropped (see
 * style_pick) so that only bold, reverse and underline carry meaning. */
enum { GA_BOLD = 1, GA_DIM = 2, GA_REVERSE = 4, GA_UNDERLINE = 8 };

typedef struct {
    uint8_t fg, bg;   /* GC_* */
    uint8_t attr;     /* GA_* bits */
} Style;

/* The right half of a wide glyph. Not a valid codepoint, so it cannot be
 * confused with text. */
#define GRID_CONT 0xFFFFFFFFu

typedef struct {
    uint32_t cp;      /* Unicode codepoint, or GRID_CONT */
    Style st;
} Cell;

typedef struct {
    int w, h;
    Cell *cells;      /* h rows of w cells */
} Grid;

typedef struct {
    int x, y, w, h;
} Rect;

/* How to draw: Unicode glyphs (Braille, blocks, box drawing) or the ASCII
 * fallback; colours or the colour-free mode. */
typedef struct {
    int unicode;
    int colour;
} DrawOpts;

static inline int gmin(int a, int b) { return a < b ? a : b; }
static inline int gmax(int a, int b) { return a > b ? a : b; }
static inline int gclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline Rect grect(int x, int y, int w, int h) { Rect r = {x, y, w, h}; return r; }
static inline Style gstyle(int fg, int bg, int attr) {
    Style s = {(uint8_t)fg, (uint8_t)bg, (uint8_t)attr};
    return s;
}
static inline int style_eq(Style a, Style b) { return a.fg == b.fg && a.bg == b.bg && a.attr == b.attr; }

/* The style a drawing wants, resolved for the mode: with colour, fg and
 * attr as given; without colour, no colours, no DIM, and attr | mono_attr,
 * so that a meaning carried by colour (an error in red, the second run of a
 * comparison) is carried by bold, reverse or underline instead. */
Style style_pick(const DrawOpts *o, int fg, int attr, int mono_attr);
/* Same, with a background colour (status-line keys); without colour the
 * background becomes GA_REVERSE. */
Style style_pick_bg(const DrawOpts *o, int fg, int bg, int attr);

/* Allocates a w x h grid of blanks. Returns 0, or -1 (bad size, no memory). */
int grid_init(Grid *g, int w, int h);
void grid_free(Grid *g);

/* NULL outside the grid. */
Cell *grid_at(Grid *g, int x, int y);
const Cell *grid_cat(const Grid *g, int x, int y);

/* Fills r (clipped to the grid) with spaces in style st. */
void grid_fill(Grid *g, Rect r, uint32_t cp, Style st);
void grid_clear(Grid *g, Rect r, Style st);

/* Puts one codepoint at (x, y), clipped to the grid. A wide codepoint that
 * does not fit before the right edge is replaced by a space. Returns the
 * columns used (0 when clipped away). */
int grid_put(Grid *g, int x, int y, uint32_t cp, Style st);

/* Writes UTF-8 text at (x, y), at most maxw columns and never past the
 * grid's edge. Control characters become '?', malformed bytes U+FFFD,
 * zero-width marks are dropped (a cell holds one codepoint). A wide glyph
 * that would straddle the limit is not drawn. Returns the columns written. */
int grid_text(Grid *g, int x, int y, int maxw, Style st, const char *s);
/* Same, but text wider than maxw ends in an ellipsis ('…', or '~' in ASCII
 * mode) so the reader knows it was cut. */
int grid_text_fit(Grid *g, int x, int y, int maxw, Style st, const char *s, int unicode);
/* printf into a bounded buffer, then grid_text. */
int grid_textf(Grid *g, int x, int y, int maxw, Style st, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

void grid_hline(Grid *g, int x, int y, int len, uint32_t cp, Style st);
void grid_vline(Grid *g, int x, int y, int len, uint32_t cp, Style st);

/* A border around r (rounded corners in Unicode, + - | in ASCII) with an
 * optional title on the top edge (" Loss "), cut to fit. r's interior is
 * left alone; grid_inner gives it. */
void grid_box(Grid *g, Rect r, Style border, const char *title, Style title_st, int unicode);
Rect grid_inner(Rect r);

/* UTF-8 helpers. utf8_decode reads one codepoint from s (at most len
 * bytes): returns the bytes consumed (>= 1) and sets *cp, or U+FFFD and 1
 * for a malformed, overlong, surrogate or truncated sequence. */
int utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Writes cp as UTF-8 into out (4 bytes at most); returns the length. */
int utf8_encode(uint32_t cp, char out[4]);
/* Display columns of a codepoint: 0 (combining, zero-width), 1 or 2. */
int cp_width(uint32_t cp);
/* Display columns of a string, as grid_text would draw it. */
int utf8_width(const char *s);

/* Braille: U+2800 plus one bit per dot. A cell holds 2 x 4 dots; dx in
 * 0..1 (left, right), dy in 0..3 (top to bottom). */
#define BRAILLE_BASE 0x2800u
uint32_t braille_bit(int dx, int dy);

/* The grid as text: one line per row, wide glyphs once, trailing spaces
 * trimmed. Returns a malloc'd string (NULL without memory). */
char *grid_dump_text(const Grid *g);
/* The grid's styles: one line per row, one character per cell ('.' for the
 * default style, then a letter per distinct style in order of first
 * appearance, trailing '.' trimmed), then a legend line per letter
 * ("a fg=cyan dim"). Returns a malloc'd string. */
char *grid_dump_styles(const Grid *g);

#endif
