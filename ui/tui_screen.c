/* The terminal: the one file of the workbench that talks to ncurses.
 *
 * Screens render into a Grid; screen_blit copies it, one ncurses cell per
 * grid cell (a wide glyph's GRID_CONT half is skipped: ncurses fills both
 * columns from the left one), with a colour pair per fg/bg combination
 * and the attributes. Only cells that changed since the previous blit are
 * handed to ncurses, which then sends only what the terminal lacks. */
#define NCURSES_WIDECHAR 1

#include "ui/tui.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

struct TuiScreen {
    SCREEN *scr;
    int unicode, colour, default_colours;
    short pair[9][9];           /* GC_ fg x bg -> pair; 0: not made yet */
    int next_pair;
    Grid last;                  /* what the terminal shows */
    int full;                   /* the next blit sends every cell */
};

int screen_open(TuiScreen **out, int force_ascii, int force_mono, DrawOpts *opts, char *err, size_t errlen) {
    *out = NULL;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        snprintf(err, errlen, "the workbench needs a terminal (stdin and stdout are not both one); "
                 "headless runs: bilora train --help");
        return -1;
    }
    const char *term = getenv("TERM");
    if (!term || !*term) {
        snprintf(err, errlen, "TERM is not set, so the terminal's type is unknown (try TERM=xterm-256color)");
        return -1;
    }
    TuiScreen *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Only the character type follows the user's locale: numbers must keep
     * their '.' (the form's values are parsed with strtod). */
    setlocale(LC_CTYPE, "");
    const char *cs = nl_langinfo(CODESET);
    s->unicode = !force_ascii && cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
    s->scr = newterm(NULL, stdout, stdin);
    if (!s->scr) {
        snprintf(err, errlen, "ncurses does not know the terminal type '%s' (try TERM=xterm-256color)", term);
        free(s);
        return -1;
    }
    set_term(s->scr);
    cbreak();
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    keypad(stdscr, TRUE);
    leaveok(stdscr, TRUE);
    curs_set(0);
    /* Esc alone closes things; the default second of waiting for the rest
     * of an escape sequence feels broken. */
    set_escdelay(25);
    /* ^C arrives as a key, not as SIGINT: quitting a run must ask first
     * (ncurses would restore the terminal and exit on the signal, losing
     * the run). ^Z still suspends. def_prog_mode makes this the mode
     * ncurses returns to after a suspend; endwin restores the shell's. */
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &tio) == 0) {
        tio.c_cc[VINTR] = _POSIX_VDISABLE;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0) def_prog_mode();
    }
    const char *nc = getenv("NO_COLOR");
    s->colour = !force_mono && has_colors() && !(nc && *nc);
    if (s->colour) {
        start_color();
        s->default_colours = use_default_colors() == OK;
    }
    s->next_pair = 1;
    s->full = 1;
    opts->unicode = s->unicode;
    opts->colour = s->colour;
    *out = s;
    return 0;
}

void screen_close(TuiScreen *s) {
    if (!s) return;
    endwin();
    delscreen(s->scr);
    grid_free(&s->last);
    free(s);
}

void screen_size(TuiScreen *s, int *w, int *h) {
    (void)s;
    int y, x;
    getmaxyx(stdscr, y, x);
    *w = x;
    *h = y;
}

/* A GC_ colour as ncurses numbers it; GC_DEFAULT is -1 where the terminal
 * lets its own colours through, else white on black. */
static short nc_colour(const TuiScreen *s, int gc, int is_bg) {
    if (gc <= GC_DEFAULT || gc > GC_WHITE) return s->default_colours ? -1 : is_bg ? COLOR_BLACK : COLOR_WHITE;
    static const short MAP[9] = {0, COLOR_BLACK, COLOR_RED, COLOR_GREEN, COLOR_YELLOW,
                                 COLOR_BLUE, COLOR_MAGENTA, COLOR_CYAN, COLOR_WHITE};
    return MAP[gc];
}

/* Pairs are made on first use: a screen uses a dozen of the 81 possible,
 * and an 8-colour terminal may offer only 64. When they run out, the
 * foreground alone is kept (pair of fg on default). */
static short pair_for(TuiScreen *s, int fg, int bg) {
    if (!s->colour) return 0;
    fg = gclamp(fg, 0, 8);
    bg = gclamp(bg, 0, 8);
    if (fg == GC_DEFAULT && bg == GC_DEFAULT) return 0;
    if (s->pair[fg][bg]) return s->pair[fg][bg];
    if (s->next_pair >= COLOR_PAIRS || s->next_pair > 32767) return bg != GC_DEFAULT ? pair_for(s, fg, GC_DEFAULT) : 0;
    short p = (short)s->next_pair++;
    init_pair(p, nc_colour(s, fg, 0), nc_colour(s, bg, 1));
    s->pair[fg][bg] = p;
    return p;
}

/* Without a UTF-8 locale the drawing layer already draws in ASCII; what
 * is left (text such as a method's summary, an arrow in an event) is
 * spelled in ASCII here rather than sent as bytes the terminal cannot show. */
static uint32_t ascii_of(uint32_t cp) {
    if (cp >= 0x20 && cp < 0x7F) return cp;
    switch (cp) {
    case 0x00B7: case 0x2022: case 0x2219: return '.';
    case 0x00D7: return 'x';
    case 0x2192: case 0x25B8: case 0x25B6: case 0x27A4: return '>';
    case 0x2190: return '<';
    case 0x2191: return '^';
    case 0x2193: return 'v';
    case 0x2026: return '~';
    case 0x2500: case 0x2212: case 0x2013: case 0x2014: return '-';
    case 0x2502: case 0x2016: return '|';
    case 0x25CF: case 0x2299: case 0x2713: return '*';
    case 0x2717: return '!';
    case 0x23CE: return 'J';
    case 0x03BB: return 'l';
    case 0x03C3: return 's';
    case 0x03B1: return 'a';
    case 0x03B3: return 'g';
    case 0x03B5: return 'e';
    case 0x03BE: return 'x';
    case 0x00B2: return '2';
    case 0x1D40: return 'T';
    default: return cp < 0x20 ? ' ' : '?';
    }
}

void screen_blit(TuiScreen *s, const Grid *g) {
    int W, H;
    getmaxyx(stdscr, H, W);
    int full = s->full || s->last.w != g->w || s->last.h != g->h;
    if (full) {
        grid_free(&s->last);
        if (grid_init(&s->last, g->w, g->h) != 0) memset(&s->last, 0, sizeof(s->last));
        erase();
    }
    for (int y = 0; y < g->h && y < H; y++) {
        for (int x = 0; x < g->w && x < W; x++) {
            const Cell *c = grid_cat(g, x, y);
            Cell *was = s->last.cells ? grid_at(&s->last, x, y) : NULL;
            if (!full && was && was->cp == c->cp && style_eq(was->st, c->st)) continue;
            if (was) *was = *c;
            if (c->cp == GRID_CONT) continue;
            uint32_t cp = s->unicode ? c->cp : ascii_of(c->cp);
            if (cp < 0x20 || cp == 0x7F) cp = ' ';
            wchar_t wc[2] = {(wchar_t)cp, 0};
            attr_t a = A_NORMAL;
            if (c->st.attr & GA_BOLD) a |= A_BOLD;
            if (c->st.attr & GA_DIM) a |= A_DIM;
            if (c->st.attr & GA_REVERSE) a |= A_REVERSE;
            if (c->st.attr & GA_UNDERLINE) a |= A_UNDERLINE;
            cchar_t cc;
            setcchar(&cc, wc, a, pair_for(s, c->st.fg, c->st.bg), NULL);
            /* The bottom-right cell returns ERR (the cursor cannot move
             * past it) but is drawn; nothing to handle. */
            mvadd_wch(y, x, &cc);
        }
    }
    s->full = 0;
    wnoutrefresh(stdscr);
    doupdate();
}

/* The terminal's size now, from the tty itself: SIGWINCH may land on a
 * trainer or BLAS thread, so the loop also asks directly. */
static int tty_size(int *w, int *h) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0) return -1;
    *w = ws.ws_col;
    *h = ws.ws_row;
    return 0;
}

static void on_resized(TuiScreen *s) {
    s->full = 1;
    clearok(curscr, TRUE);
}

int screen_key(TuiScreen *s, int timeout_ms, TuiKey *k) {
    memset(k, 0, sizeof(*k));
    int w, h, cw, ch;
    screen_size(s, &cw, &ch);
    if (tty_size(&w, &h) == 0 && (w != cw || h != ch)) {
        resizeterm(h, w);
        /* resizeterm queues a KEY_RESIZE of its own; it is read (and
         * ignored as a second resize) on the next call. */
        on_resized(s);
        k->code = TK_RESIZE;
        return 1;
    }
    wtimeout(stdscr, timeout_ms);
    wint_t c;
    int rc = wget_wch(stdscr, &c);
    if (rc == ERR) return 0;
    if (rc == KEY_CODE_YES) {
        switch (c) {
        case KEY_UP: k->code = TK_UP; break;
        case KEY_DOWN: k->code = TK_DOWN; break;
        case KEY_LEFT: k->code = TK_LEFT; break;
        case KEY_RIGHT: k->code = TK_RIGHT; break;
        case KEY_ENTER: k->code = TK_ENTER; break;
        case KEY_BACKSPACE: k->code = TK_BACKSPACE; break;
        case KEY_DC: k->code = TK_DELETE; break;
        case KEY_PPAGE: k->code = TK_PGUP; break;
        case KEY_NPAGE: k->code = TK_PGDN; break;
        case KEY_HOME: k->code = TK_HOME; break;
        case KEY_END: k->code = TK_END; break;
        case KEY_BTAB: k->code = TK_TAB; break;
        case KEY_RESIZE:
            on_resized(s);
            k->code = TK_RESIZE;
            break;
        default: return 0;
        }
        return 1;
    }
    switch (c) {
    case '\r': case '\n': k->code = TK_ENTER; return 1;
    case 27: k->code = TK_ESC; return 1;
    case 127: case 8: k->code = TK_BACKSPACE; return 1;
    case '\t': k->code = TK_TAB; return 1;
    case 21: k->code = TK_CLEAR_LINE; return 1; /* ^U, as in a shell */
    case 3: k->code = TK_INTERRUPT; return 1;   /* ^C */
    default: break;
    }
    if (c < 0x20) return 0;
    k->code = TK_CHAR;
    k->ch = (uint32_t)c;
    int n = utf8_encode((uint32_t)c, k->text);
    k->text[n] = 0;
    return 1;
}
