/* End-to-end tests of the workbench: the real ./bilora in a pseudo-terminal
 * (forkpty), 80x24, TERM=xterm-256color, assets from a tiny fixture. The
 * test reads the screen through a small VT100/xterm interpreter (below)
 * fed with exactly the bytes ncurses wrote, sends keys as a terminal
 * would (application cursor keys, since ncurses turns keypad mode on),
 * and polls the screen with timeouts instead of sleeping.
 *
 * Covered: the picker lists the fixture's model and task with its example
 * count; picking a method opens the setup form; the run starts and the
 * dashboard says "running", then "paused"; lower-lr tuned through the
 * form shows in the event log with its old and new value; a resize to
 * 60x20 says the terminal is too small and one to 100x30 redraws a clean
 * frame; quitting asks first; an empty asset path gives the screen that
 * says where assets are looked for; compare mode runs two methods; the
 * ASCII and colour-free modes send no colour and no non-ASCII byte; and
 * without a terminal `bilora` says so instead of drawing.
 *
 * ./bilora must be built (make check-tests builds it first); BILORA_BIN
 * names another binary. Run from the repository root. */
#define _DEFAULT_SOURCE /* forkpty, TIOCSWINSZ */
#define _XOPEN_SOURCE 700 /* wcwidth */

#include "tests/fixtures.h"
#include "sessions/session.h"

/* The screens' pure parts (no ncurses) are unit-tested here too, compiled
 * in as tests/test_ui_draw.c does with the drawing layer: the Makefile
 * links ui/ into ./bilora only. */
#include "ui/grid.c"
#include "ui/chart.c"
#include "ui/heatmap.c"
#include "ui/histogram.c"
#include "ui/panels.c"
#include "ui/tui_dash.c"
#include "ui/tui_picker.c"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

/* ---- a terminal ------------------------------------------------------------
 * Enough of xterm for what ncurses sends with xterm-256color's terminfo:
 * printable UTF-8 with autowrap (xenl: the wrap waits for the next
 * character), CR LF BS TAB, cursor addressing and motion (CUP HVP CUU CUD
 * CUF CUB CNL CPL CHA HPA VPA HPR VPR), erasing (ED EL ECH), inserting and
 * deleting (ICH DCH IL DL, insert mode), scrolling (DECSTBM, IND RI NEL,
 * SU SD, LF at the bottom margin), REP, save/restore cursor, DEC line
 * drawing (ESC ( 0), SGR (colours noted, attributes ignored), OSC strings
 * and private modes (ignored), and DSR (answered). */

#define VT_MAXW 256
#define VT_MAXH 128
#define VT_CONT 0xFFFFFFFFu

typedef struct {
    int w, h;
    uint32_t cell[VT_MAXH][VT_MAXW];
    int x, y, wrap_pending;
    int top, bottom;                /* scroll region, inclusive */
    int sx, sy;                     /* saved cursor */
    int insert, g0_graphics;
    uint32_t last;                  /* last printed, for REP */
    /* parser */
    int state;                      /* 0 ground, 1 ESC, 2 CSI, 3 OSC, 4 OSC+ESC, 5 ESC + intermediate */
    char inter;
    char priv;
    int params[16], np, have_param;
    uint32_t u8cp;
    int u8need;
    int saw_colour;                 /* an SGR set a colour */
    int non_ascii;                  /* a byte >= 0x80 arrived */
    char reply[64];                 /* to send back (DSR) */
} Vt;

static void vt_clear_rows(Vt *t, int y0, int y1) {
    for (int y = y0; y <= y1; y++)
        for (int x = 0; x < VT_MAXW; x++) t->cell[y][x] = ' ';
}

static void vt_init(Vt *t, int w, int h) {
    memset(t, 0, sizeof(*t));
    t->w = w;
    t->h = h;
    t->bottom = h - 1;
    vt_clear_rows(t, 0, VT_MAXH - 1);
}

static void vt_resize(Vt *t, int w, int h) {
    t->w = w;
    t->h = h;
    for (int y = 0; y < VT_MAXH; y++)
        for (int x = (y < h ? w : 0); x < VT_MAXW; x++) t->cell[y][x] = ' ';
    t->top = 0;
    t->bottom = h - 1;
    if (t->x >= w) t->x = w - 1;
    if (t->y >= h) t->y = h - 1;
    t->wrap_pending = 0;
}

static void vt_scroll_up(Vt *t, int top, int bottom, int n) {
    for (int k = 0; k < n; k++) {
        for (int y = top; y < bottom; y++) memcpy(t->cell[y], t->cell[y + 1], sizeof(t->cell[y]));
        vt_clear_rows(t, bottom, bottom);
    }
}

static void vt_scroll_down(Vt *t, int top, int bottom, int n) {
    for (int k = 0; k < n; k++) {
        for (int y = bottom; y > top; y--) memcpy(t->cell[y], t->cell[y - 1], sizeof(t->cell[y]));
        vt_clear_rows(t, top, top);
    }
}

static void vt_linefeed(Vt *t) {
    t->wrap_pending = 0;
    if (t->y == t->bottom) vt_scroll_up(t, t->top, t->bottom, 1);
    else if (t->y < t->h - 1) t->y++;
}

static int vt_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void vt_goto(Vt *t, int x, int y) {
    t->x = vt_clampi(x, 0, t->w - 1);
    t->y = vt_clampi(y, 0, t->h - 1);
    t->wrap_pending = 0;
}

static uint32_t dec_graphics(uint32_t c) {
    switch (c) {
    case 'q': return 0x2500;
    case 'x': return 0x2502;
    case 'l': return 0x250C;
    case 'k': return 0x2510;
    case 'm': return 0x2514;
    case 'j': return 0x2518;
    case 'n': return 0x253C;
    case 't': return 0x251C;
    case 'u': return 0x2524;
    case 'v': return 0x2534;
    case 'w': return 0x252C;
    case 'a': return 0x2592;
    case '~': return 0x00B7;
    default: return c;
    }
}

static void vt_print(Vt *t, uint32_t cp) {
    if (t->g0_graphics && cp < 0x80) cp = dec_graphics(cp);
    int wd = wcwidth((wchar_t)cp);
    if (wd < 1) wd = 1;
    if (t->wrap_pending) {
        t->x = 0;
        vt_linefeed(t);
    }
    if (t->insert) {
        for (int x = t->w - 1; x >= t->x + wd; x--) t->cell[t->y][x] = t->cell[t->y][x - wd];
    }
    t->cell[t->y][t->x] = cp;
    if (wd == 2 && t->x + 1 < t->w) t->cell[t->y][t->x + 1] = VT_CONT;
    t->last = cp;
    if (t->x + wd >= t->w) {
        t->x = t->w - 1;
        t->wrap_pending = 1;
    } else {
        t->x += wd;
    }
}

static int vt_param(const Vt *t, int i, int def) {
    return i < t->np && t->params[i] > 0 ? t->params[i] : def;
}

static void vt_erase(Vt *t, int y, int x0, int x1) {
    for (int x = x0; x <= x1 && x < t->w; x++) t->cell[y][x] = ' ';
}

static void vt_csi(Vt *t, char f) {
    int n = vt_param(t, 0, 1);
    if (t->priv) {
        if (f == 'c' || f == 'n') return; /* device queries we do not answer */
        return;                           /* private modes: nothing on screen */
    }
    switch (f) {
    case 'A': vt_goto(t, t->x, t->y - n); break;
    case 'B': case 'e': vt_goto(t, t->x, t->y + n); break;
    case 'C': case 'a': vt_goto(t, t->x + n, t->y); break;
    case 'D': vt_goto(t, t->x - n, t->y); break;
    case 'E': vt_goto(t, 0, t->y + n); break;
    case 'F': vt_goto(t, 0, t->y - n); break;
    case 'G': case '`': vt_goto(t, n - 1, t->y); break;
    case 'd': vt_goto(t, t->x, n - 1); break;
    case 'H': case 'f': vt_goto(t, vt_param(t, 1, 1) - 1, vt_param(t, 0, 1) - 1); break;
    case 'J': {
        int m = t->np ? t->params[0] : 0;
        if (m == 0) {
            vt_erase(t, t->y, t->x, t->w - 1);
            for (int y = t->y + 1; y < t->h; y++) vt_erase(t, y, 0, t->w - 1);
        } else if (m == 1) {
            for (int y = 0; y < t->y; y++) vt_erase(t, y, 0, t->w - 1);
            vt_erase(t, t->y, 0, t->x);
        } else {
            for (int y = 0; y < t->h; y++) vt_erase(t, y, 0, t->w - 1);
        }
        break;
    }
    case 'K': {
        int m = t->np ? t->params[0] : 0;
        if (m == 0) vt_erase(t, t->y, t->x, t->w - 1);
        else if (m == 1) vt_erase(t, t->y, 0, t->x);
        else vt_erase(t, t->y, 0, t->w - 1);
        break;
    }
    case 'X': vt_erase(t, t->y, t->x, t->x + n - 1); break;
    case '@':
        for (int x = t->w - 1; x >= t->x + n; x--) t->cell[t->y][x] = t->cell[t->y][x - n];
        vt_erase(t, t->y, t->x, vt_clampi(t->x + n - 1, 0, t->w - 1));
        break;
    case 'P':
        for (int x = t->x; x < t->w; x++) t->cell[t->y][x] = x + n < t->w ? t->cell[t->y][x + n] : ' ';
        break;
    case 'L':
        if (t->y >= t->top && t->y <= t->bottom) vt_scroll_down(t, t->y, t->bottom, n);
        break;
    case 'M':
        if (t->y >= t->top && t->y <= t->bottom) vt_scroll_up(t, t->y, t->bottom, n);
        break;
    case 'S': vt_scroll_up(t, t->top, t->bottom, n); break;
    case 'T': vt_scroll_down(t, t->top, t->bottom, n); break;
    case 'b':
        for (int i = 0; i < n && i < 4096; i++) vt_print(t, t->last);
        break;
    case 'r':
        t->top = vt_param(t, 0, 1) - 1;
        t->bottom = vt_param(t, 1, t->h) - 1;
        if (t->top < 0 || t->bottom >= t->h || t->top >= t->bottom) {
            t->top = 0;
            t->bottom = t->h - 1;
        }
        vt_goto(t, 0, 0);
        break;
    case 's': t->sx = t->x; t->sy = t->y; break;
    case 'u': vt_goto(t, t->sx, t->sy); break;
    case 'h': case 'l':
        for (int i = 0; i < t->np; i++)
            if (t->params[i] == 4) t->insert = f == 'h';
        break;
    case 'n':
        if (t->np && t->params[0] == 6) snprintf(t->reply, sizeof(t->reply), "\033[%d;%dR", t->y + 1, t->x + 1);
        break;
    case 'm':
        for (int i = 0; i < t->np; i++) {
            int p = t->params[i];
            if ((p >= 30 && p <= 38) || (p >= 40 && p <= 48) || (p >= 90 && p <= 107)) t->saw_colour = 1;
            if (p == 38 || p == 48) i += 2; /* 38;5;N */
        }
        break;
    default: break;
    }
}

static void vt_feed(Vt *t, const char *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c >= 0x80) t->non_ascii = 1;
        switch (t->state) {
        case 0:
            if (t->u8need) {
                if ((c & 0xC0) == 0x80) {
                    t->u8cp = (t->u8cp << 6) | (c & 0x3F);
                    if (--t->u8need == 0) vt_print(t, t->u8cp);
                    continue;
                }
                t->u8need = 0;
                vt_print(t, 0xFFFD);
            }
            if (c == 0x1B) t->state = 1;
            else if (c == '\r') { t->x = 0; t->wrap_pending = 0; }
            else if (c == '\n' || c == 0x0B || c == 0x0C) vt_linefeed(t);
            else if (c == '\b') { if (t->x > 0) t->x--; t->wrap_pending = 0; }
            else if (c == '\t') vt_goto(t, (t->x / 8 + 1) * 8, t->y);
            else if (c == 0x0E || c == 0x0F || c == 0x07 || c < 0x20 || c == 0x7F) { /* shifts, bell */ }
            else if (c < 0x80) vt_print(t, c);
            else if ((c & 0xE0) == 0xC0) { t->u8cp = c & 0x1F; t->u8need = 1; }
            else if ((c & 0xF0) == 0xE0) { t->u8cp = c & 0x0F; t->u8need = 2; }
            else if ((c & 0xF8) == 0xF0) { t->u8cp = c & 0x07; t->u8need = 3; }
            else vt_print(t, 0xFFFD);
            break;
        case 1: /* after ESC */
            t->state = 0;
            if (c == '[') {
                t->state = 2;
                t->np = 0;
                t->have_param = 0;
                t->priv = 0;
                memset(t->params, 0, sizeof(t->params));
            } else if (c == ']') t->state = 3;
            else if (c == '(' || c == ')' || c == '*' || c == '+' || c == '#' || c == '%') {
                t->inter = (char)c;
                t->state = 5;
            } else if (c == 'D') vt_linefeed(t);
            else if (c == 'E') { t->x = 0; vt_linefeed(t); }
            else if (c == 'M') {
                t->wrap_pending = 0;
                if (t->y == t->top) vt_scroll_down(t, t->top, t->bottom, 1);
                else if (t->y > 0) t->y--;
            } else if (c == '7') { t->sx = t->x; t->sy = t->y; }
            else if (c == '8') vt_goto(t, t->sx, t->sy);
            else if (c == 'c') vt_init(t, t->w, t->h);
            break;
        case 2: /* CSI */
            if (c >= '0' && c <= '9') {
                if (t->np == 0) t->np = 1;
                t->params[t->np - 1] = t->params[t->np - 1] * 10 + (c - '0');
            } else if (c == ';' || c == ':') {
                if (t->np == 0) t->np = 1;
                if (t->np < 16) t->np++;
            } else if (c == '?' || c == '>' || c == '=' || c == '<') {
                t->priv = (char)c;
            } else if (c >= 0x20 && c <= 0x2F) {
                /* intermediates ("!p" soft reset, " q" cursor style) */
                t->priv = t->priv ? t->priv : (char)c;
            } else if (c >= 0x40 && c <= 0x7E) {
                vt_csi(t, (char)c);
                t->state = 0;
            } else if (c == 0x1B) {
                t->state = 1;
            }
            break;
        case 3: /* OSC: to BEL or ESC \ */
            if (c == 0x07) t->state = 0;
            else if (c == 0x1B) t->state = 4;
            break;
        case 4: t->state = c == '\\' ? 0 : 3; break;
        case 5:
            if (t->inter == '(') t->g0_graphics = c == '0';
            t->state = 0;
            break;
        }
    }
}

/* The screen as text: a line per row, trailing blanks trimmed. */
static void vt_text(const Vt *t, char *out, size_t cap) {
    size_t k = 0;
    for (int y = 0; y < t->h; y++) {
        size_t line_start = k, last_nonblank = k;
        for (int x = 0; x < t->w; x++) {
            uint32_t cp = t->cell[y][x];
            if (cp == VT_CONT) continue;
            char u[8];
            mbstate_t st;
            memset(&st, 0, sizeof(st));
            size_t n = wcrtomb(u, (wchar_t)cp, &st);
            if (n == (size_t)-1) { u[0] = '?'; n = 1; }
            if (k + n + 2 >= cap) break;
            memcpy(out + k, u, n);
            k += n;
            if (cp != ' ') last_nonblank = k;
        }
        (void)line_start;
        k = last_nonblank;
        out[k++] = '\n';
    }
    out[k] = 0;
}

static void vt_row(const Vt *t, int y, char *out, size_t cap) {
    char all[VT_MAXH * VT_MAXW * 4 + VT_MAXH + 1];
    vt_text(t, all, sizeof(all));
    const char *p = all;
    for (int i = 0; i < y && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p) { out[0] = 0; return; }
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* ---- the binary in a pseudo-terminal -------------------------------------- */

typedef struct {
    pid_t pid;
    int fd;
    Vt vt;
    int exited, status;
    char screen[VT_MAXH * VT_MAXW * 4 + VT_MAXH + 1];
} Term;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static const char *bilora_bin(void) {
    const char *b = getenv("BILORA_BIN");
    return b && *b ? b : "./bilora";
}

/* Starts argv (argv[0] is the binary) at w x h with env (NAME=value, NULL
 * ended) as the whole environment. */
static void term_start(Term *t, int w, int h, char *const *argv, char *const *env) {
    memset(t, 0, sizeof(*t));
    vt_init(&t->vt, w, h);
    ck_assert_msg(access(argv[0], X_OK) == 0, "%s is not built (make bilora; BILORA_BIN overrides)", argv[0]);
    struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
    t->pid = forkpty(&t->fd, NULL, NULL, &ws);
    ck_assert_msg(t->pid >= 0, "forkpty: %s", strerror(errno));
    if (t->pid == 0) {
        execve(argv[0], argv, env);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
}

/* Reads whatever the program wrote within ms; notes its exit. */
static void term_pump(Term *t, int ms) {
    double end = now_ms() + ms;
    for (;;) {
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        int left = (int)(end - now_ms());
        int rc = poll(&p, 1, left > 0 ? left : 0);
        int hung_up = 0;
        if (rc > 0 && (p.revents & POLLIN)) {
            char buf[65536];
            ssize_t n = read(t->fd, buf, sizeof(buf));
            if (n > 0) {
                /* BILORA_TUI_TRACE=file keeps the raw bytes, to replay them
                 * in a real terminal when the interpreter is in doubt. */
                const char *trace = getenv("BILORA_TUI_TRACE");
                FILE *tf = trace && *trace ? fopen(trace, "ab") : NULL;
                if (tf) {
                    fwrite(buf, 1, (size_t)n, tf);
                    fclose(tf);
                }
                vt_feed(&t->vt, buf, (size_t)n);
                if (t->vt.reply[0]) {
                    ssize_t w = write(t->fd, t->vt.reply, strlen(t->vt.reply));
                    (void)w;
                    t->vt.reply[0] = 0;
                }
                continue;
            }
            hung_up = n == 0 || errno != EAGAIN; /* EIO: the other side closed */
        }
        if (rc > 0 && (p.revents & (POLLHUP | POLLERR))) hung_up = 1;
        if (!t->exited && waitpid(t->pid, &t->status, WNOHANG) == t->pid) t->exited = 1;
        if (t->exited && hung_up) break;
        if (hung_up) {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (now_ms() >= end) break;
    }
    vt_text(&t->vt, t->screen, sizeof(t->screen));
}

static void term_send(Term *t, const char *keys) {
    size_t n = strlen(keys);
    ck_assert_int_eq(write(t->fd, keys, n), (ssize_t)n);
}

/* Esc alone: ncurses waits ESCDELAY (25 ms here) to tell it from the start
 * of a sequence, so nothing may follow it at once. */
static void term_esc(Term *t) {
    term_send(t, "\033");
    term_pump(t, 120);
}

#define KEY_DOWN "\033OB"
#define KEY_UP "\033OA"
#define ENTER "\r"

/* Polls until the screen holds needle (or timeout_ms pass): 1 / 0. */
static int term_wait(Term *t, const char *needle, int timeout_ms) {
    double end = now_ms() + timeout_ms;
    do {
        term_pump(t, 30);
        if (strstr(t->screen, needle)) return 1;
    } while (now_ms() < end && !t->exited);
    return strstr(t->screen, needle) != NULL;
}

static int term_wait_row(Term *t, int row, const char *needle, int timeout_ms) {
    double end = now_ms() + timeout_ms;
    char line[VT_MAXW * 4 + 1];
    do {
        term_pump(t, 30);
        vt_row(&t->vt, row, line, sizeof(line));
        if (strstr(line, needle)) return 1;
    } while (now_ms() < end && !t->exited);
    return 0;
}

#define WAIT(t, needle, ms) ck_assert_msg(term_wait(t, needle, ms), "waited %d ms for \"%s\"; screen:\n%s", ms, needle, (t)->screen)
#define WAIT_ROW(t, row, needle, ms) \
    ck_assert_msg(term_wait_row(t, row, needle, ms), "waited %d ms for \"%s\" on row %d; screen:\n%s", ms, needle, row, (t)->screen)

static void term_resize(Term *t, int w, int h) {
    struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
    ck_assert_int_eq(ioctl(t->fd, TIOCSWINSZ, &ws), 0);
    vt_resize(&t->vt, w, h);
    kill(t->pid, SIGWINCH);
}

/* Waits for the program to end; returns its exit status (-1: killed after
 * the timeout, a signal: 128 + signal). */
static int term_finish(Term *t, int timeout_ms) {
    double end = now_ms() + timeout_ms;
    while (!t->exited && now_ms() < end) term_pump(t, 50);
    if (!t->exited) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &t->status, 0);
        close(t->fd);
        return -1;
    }
    close(t->fd);
    if (WIFEXITED(t->status)) return WEXITSTATUS(t->status);
    return 128 + (WIFSIGNALED(t->status) ? WTERMSIG(t->status) : 0);
}

/* ---- fixtures -------------------------------------------------------------- */

typedef struct {
    char dir[256];          /* everything below is in here */
    char root[512];         /* an asset root: models/tiny, data/glue/SST-2 */
    char empty[512];        /* an asset root with nothing in it */
    char home[512];         /* HOME: empty, so no ~/.cache/bilora or HF cache */
    char env[8][600];
    char *envp[9];
} Fixture;

static void fixture_make(Fixture *f) {
    memset(f, 0, sizeof(*f));
    fixture_tmpdir(f->dir);
    ck_assert_int_eq(fixture_tiny_glue(f->dir, 0), 0);
    snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
    snprintf(f->empty, sizeof(f->empty), "%s/empty", f->dir);
    snprintf(f->home, sizeof(f->home), "%s/home", f->dir);
    char p[1024], q[1024];
    const char *dirs[] = {f->root, f->empty, f->home};
    for (int i = 0; i < 3; i++) ck_assert_int_eq(mkdir(dirs[i], 0755), 0);
    snprintf(p, sizeof(p), "%s/models", f->root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/data", f->root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/data/glue", f->root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/model", f->dir);
    snprintf(q, sizeof(q), "%s/models/tiny", f->root);
    ck_assert_int_eq(symlink(p, q), 0);
    snprintf(p, sizeof(p), "%s/SST-2", f->dir);
    snprintf(q, sizeof(q), "%s/data/glue/SST-2", f->root);
    ck_assert_int_eq(symlink(p, q), 0);
}

/* The environment of the program: nothing inherited but PATH, so the
 * user's own assets, HOME and locale cannot leak in. */
static char *const *fixture_env(Fixture *f, const char *assets, const char *lang, int no_colour) {
    int n = 0;
    const char *path = getenv("PATH");
    snprintf(f->env[n++], sizeof(f->env[0]), "PATH=%s", path ? path : "/usr/bin:/bin");
    snprintf(f->env[n++], sizeof(f->env[0]), "HOME=%s", f->home);
    snprintf(f->env[n++], sizeof(f->env[0]), "TERM=xterm-256color");
    snprintf(f->env[n++], sizeof(f->env[0]), "LANG=%s", lang);
    snprintf(f->env[n++], sizeof(f->env[0]), "LC_ALL=%s", lang);
    snprintf(f->env[n++], sizeof(f->env[0]), "BILORA_ASSETS=%s", assets);
    snprintf(f->env[n++], sizeof(f->env[0]), "OPENBLAS_NUM_THREADS=1");
    if (no_colour) snprintf(f->env[n++], sizeof(f->env[0]), "NO_COLOR=1");
    for (int i = 0; i < n; i++) f->envp[i] = f->env[i];
    f->envp[n] = NULL;
    return f->envp;
}

/* The step on the stats row ("step 1,234/..."), commas dropped; -1 if none. */
static long stats_step(Term *t) {
    char line[VT_MAXW * 4 + 1], digits[32];
    vt_row(&t->vt, 0, line, sizeof(line));
    const char *p = strstr(line, "step ");
    if (!p) return -1;
    p += 5;
    size_t k = 0;
    for (; *p && *p != '/' && *p != ' ' && k + 1 < sizeof(digits); p++)
        if (*p != ',') digits[k++] = *p;
    digits[k] = 0;
    return k ? strtol(digits, NULL, 10) : -1;
}

/* A clean frame at w x h: every boxed row starts and ends with a border
 * glyph in the first and last column, the stats row is on top, the keys
 * at the bottom, and nothing is drawn past the right edge. */
static void check_frame(Term *t, int w, int h) {
    char line[VT_MAXW * 4 + 1];
    vt_row(&t->vt, 0, line, sizeof(line));
    ck_assert_msg(strstr(line, "step "), "stats row: %s\nscreen:\n%s", line, t->screen);
    vt_row(&t->vt, h - 1, line, sizeof(line));
    ck_assert_msg(strstr(line, "quit"), "status row: %s\nscreen:\n%s", line, t->screen);
    static const uint32_t LEFT[] = {0x256D, 0x2502, 0x2570};
    static const uint32_t RIGHT[] = {0x256E, 0x2502, 0x256F};
    for (int y = 2; y < h - 1; y++) {
        uint32_t l = t->vt.cell[y][0], r = t->vt.cell[y][w - 1];
        int okl = 0, okr = 0;
        for (int i = 0; i < 3; i++) {
            okl |= l == LEFT[i];
            okr |= r == RIGHT[i];
        }
        ck_assert_msg(okl && okr, "row %d is not framed (U+%04X ... U+%04X) at %dx%d; screen:\n%s", y, l, r, w, h,
                      t->screen);
    }
    for (int y = 0; y < h; y++)
        for (int x = w; x < VT_MAXW; x++) ck_assert_msg(t->vt.cell[y][x] == ' ', "a glyph past column %d", w);
}

/* ---- tests ----------------------------------------------------------------- */

/* ---- the pure parts ------------------------------------------------------- */

START_TEST(event_lines_are_read) {
    long step;
    const char *text;
    char key[32], value[64];
    ck_assert_int_eq(tui_event_parse("step 12: lower_lr = 1e-4", &step, &text, key, sizeof(key), value, sizeof(value)),
                     DASH_EV_CHANGE);
    ck_assert_int_eq(step, 12);
    ck_assert_str_eq(key, "lower_lr");
    ck_assert_str_eq(value, "1e-4");
    ck_assert_int_eq(tui_event_parse("step 100: dev loss 0.6931, accuracy 0.5000", &step, &text, key, sizeof(key),
                                     value, sizeof(value)),
                     DASH_EV_EVAL);
    ck_assert_int_eq(step, 100);
    ck_assert_str_eq(text, "dev loss 0.6931, accuracy 0.5000");
    ck_assert_str_eq(key, "");
    ck_assert_int_eq(tui_event_parse("paused at step 7", &step, &text, NULL, 0, NULL, 0), DASH_EV_INFO);
    ck_assert_int_eq(step, 7);
    ck_assert_int_eq(tui_event_parse("refused: rank cannot change", &step, &text, NULL, 0, NULL, 0), DASH_EV_WARN);
    ck_assert_int_eq(step, -1);
    ck_assert_int_eq(tui_event_parse("paused: step 9: loss is nan", &step, &text, NULL, 0, NULL, 0), DASH_EV_WARN);
    ck_assert_int_eq(tui_event_parse("RTE: 2,490 train, 277 dev", &step, &text, NULL, 0, NULL, 0), DASH_EV_INFO);
    ck_assert_int_eq(step, -1);
    /* "step 3:" without the space is not a step prefix */
    ck_assert_int_eq(tui_event_parse("step 3:x", &step, &text, NULL, 0, NULL, 0), DASH_EV_INFO);
    ck_assert_int_eq(step, -1);
}
END_TEST

static const char *initial_lr(void *ctx, const char *key) {
    (void)ctx;
    return !strcmp(key, "lower_lr") ? "5e-4" : NULL;
}

static void fill_view(TrainerView *v, const char *method, long step) {
    v->state = TRAINER_RUNNING;
    v->step = step;
    v->total_steps = 100;
    snprintf(v->config.method, sizeof(v->config.method), "%s", method);
    snprintf(v->config.device, sizeof(v->config.device), "cpu");
    for (int i = 0; i < 3; i++) {
        v->loss.step[i] = v->upper_loss.step[i] = v->dev_loss.step[i] = v->dev_metric.step[i] = 10 * (i + 1);
        v->loss.value[i] = 0.7f - 0.1f * (float)i;
        v->upper_loss.value[i] = 0.75f - 0.1f * (float)i;
        v->dev_loss.value[i] = 0.72f - 0.05f * (float)i;
        v->dev_metric.value[i] = 0.5f + 0.1f * (float)i;
    }
    v->loss.n = v->upper_loss.n = v->dev_loss.n = v->dev_metric.n = 3;
    snprintf(v->metric_name, sizeof(v->metric_name), "accuracy");
    v->spectrum_rows = 2;
    v->spectrum_cols = 3;
    snprintf(v->spectrum_names[0], SPECTRUM_NAME, "L0.query");
    snprintf(v->spectrum_names[1], SPECTRUM_NAME, "L0.value");
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < SPEC_VALUES_MAX; k++) v->spectrum[r][k] = k < 3 ? 1.0f / (float)(k + 1) : NAN;
    const char *ev[] = {"tiny: 1.6k parameters", "step 10: dev loss 0.7000, accuracy 0.5000", "paused at step 20",
                        "step 21: lower_lr = 1e-4", "step 30: train loss 0.6000, accuracy 0.6000",
                        "step 30: dev loss 0.6500, accuracy 0.5500",
                        "refused: split_ratio: expected a number in [1e-06, 0.999999], got '2' (the ratio of "
                        "D1 to the training set)"};
    for (int i = 0; i < 7; i++) snprintf(v->events[i], sizeof(v->events[i]), "%s", ev[i]);
    v->n_events = 7;
    v->changes[0] = (RunChange){21, "lower_lr", "1e-4"};
    v->n_changes = 1;
}

static int find_event(const DashView *v, const char *text, DashEventKind kind, long step) {
    for (int i = 0; i < v->n_events; i++)
        if (!strcmp(v->events[i].text, text) && v->events[i].kind == kind && v->events[i].step == step) return i;
    return -1;
}

START_TEST(dashboard_view_from_trainer_views) {
    TrainerView *a = trainer_view_new(), *b = trainer_view_new();
    fill_view(a, "bilora", 30);
    fill_view(b, "lora", 40);
    TuiDashBuf *buf = tui_dash_buf_new();
    TuiDashIn in;
    memset(&in, 0, sizeof(in));
    in.runs[0] = (TuiRunIn){a, "bilora", GC_BLUE, initial_lr, NULL};
    in.n_runs = 1;
    in.title = "tiny \u00B7 SST-2 \u00B7 bilora";
    in.device = "cpu";
    in.smoothing = 0.6;
    in.unicode = 1;
    in.log_width = 40;
    DashView v;
    tui_dash_build(buf, &in, &v);
    /* one bi-level run: lower, upper and dev losses; the dev metric */
    ck_assert_int_eq(v.n_runs, 1);
    ck_assert_str_eq(v.runs[0].state, "running");
    ck_assert_int_eq(v.n_loss, 3);
    ck_assert_str_eq(v.loss[0].name, "lower");
    ck_assert_str_eq(v.loss[1].name, "upper");
    ck_assert_str_eq(v.loss[2].name, "dev");
    ck_assert_int_eq(v.loss[0].n, 3);
    ck_assert(fabs(v.loss[0].y[1] - 0.6) < 1e-6 && v.loss[0].x[1] == 20);
    ck_assert_int_eq(v.n_metric, 1);
    ck_assert_str_eq(v.metric_name, "accuracy");
    ck_assert_int_eq(v.spectrum.rows, 2);
    ck_assert_int_eq(v.spectrum.cols, 3);
    /* the log: steps in their column, the change with its old value */
    ck_assert_int_ge(find_event(&v, "tiny: 1.6k parameters", DASH_EV_INFO, -1), 0);
    ck_assert_int_ge(find_event(&v, "dev loss 0.7000, accuracy 0.5000", DASH_EV_EVAL, 10), 0);
    ck_assert_int_ge(find_event(&v, "paused", DASH_EV_INFO, 20), 0);
    ck_assert_int_ge(find_event(&v, "lower-lr 5e-4 \u2192 1e-4 (live)", DASH_EV_CHANGE, 21), 0);
    /* an evaluation's train and dev lines share one line */
    ck_assert_int_ge(find_event(&v, "dev loss 0.6500, accuracy 0.5500 \u00B7 train loss 0.6000", DASH_EV_EVAL, 30), 0);
    /* the long refusal wraps at spaces, each line within the width */
    int first = -1;
    for (int i = 0; i < v.n_events; i++)
        if (!strncmp(v.events[i].text, "refused:", 8)) first = i;
    ck_assert_int_ge(first, 0);
    ck_assert_int_eq(v.events[first].kind, DASH_EV_WARN);
    ck_assert_int_lt(first + 1, v.n_events);
    ck_assert_int_eq(v.events[first + 1].kind, DASH_EV_WARN);
    ck_assert_int_eq(v.events[first + 1].step, -1);
    for (int i = first; i < v.n_events; i++) ck_assert_int_le(utf8_width(v.events[i].text), 40);
    /* drawn: the change is on the 80x24 screen */
    Grid g;
    ck_assert_int_eq(grid_init(&g, 80, 24), 0);
    DrawOpts o = {1, 1};
    in.log_width = 80 - 2 - 14;
    tui_dash_build(buf, &in, &v);
    dash_draw(&g, &v, &o);
    char *text = grid_dump_text(&g);
    ck_assert_msg(strstr(text, "tiny \u00B7 SST-2 \u00B7 bilora"), "%s", text);
    ck_assert_msg(strstr(text, "\u25CF running"), "%s", text);
    free(text);

    /* compare: the runs' curves by name, both spectra, events by run */
    in.runs[1] = (TuiRunIn){b, "lora", GC_MAGENTA, initial_lr, NULL};
    in.n_runs = 2;
    in.selected = 3;
    tui_dash_build(buf, &in, &v);
    ck_assert_int_eq(v.n_runs, 2);
    ck_assert_int_eq(v.n_loss, 4);
    ck_assert_str_eq(v.loss[0].name, "bilora");
    ck_assert_str_eq(v.loss[1].name, "bilora dev");
    ck_assert_str_eq(v.loss[2].name, "lora");
    ck_assert_str_eq(v.loss[3].name, "lora dev");
    ck_assert_int_eq(v.loss[2].colour, GC_MAGENTA);
    ck_assert_int_eq(v.n_metric, 2);
    ck_assert_int_eq(v.spectrum.rows, 4);
    ck_assert_str_eq(v.spectrum.row_names[2], "lora L0.query");
    ck_assert_int_eq(v.spectrum.selected, 3);
    ck_assert_int_ge(find_event(&v, "lora: paused", DASH_EV_INFO, 20), 0);
    ck_assert_int_ge(find_event(&v, "bilora: paused", DASH_EV_INFO, 20), 0);
    /* merged by step: nothing with a step comes after a larger step */
    long last = -1;
    for (int i = 0; i < v.n_events; i++)
        if (v.events[i].step >= 0) {
            ck_assert_int_ge(v.events[i].step, last);
            last = v.events[i].step;
        }
    grid_free(&g);
    tui_dash_buf_free(buf);
    trainer_view_free(a);
    trainer_view_free(b);
}
END_TEST

START_TEST(sizes_read_short) {
    char b[32];
    tui_format_params(124645632, b, sizeof(b));
    ck_assert_str_eq(b, "124.6M");
    tui_format_params(1634, b, sizeof(b));
    ck_assert_str_eq(b, "1.6k");
    tui_format_params(-1, b, sizeof(b));
    ck_assert_str_eq(b, "?");
    tui_format_bytes(1020.5 * 1024, b, sizeof(b));
    ck_assert_str_eq(b, "1.0 MiB");
    tui_format_bytes(10240, b, sizeof(b));
    ck_assert_str_eq(b, "10.0 KiB");
    tui_format_bytes(498.6 * 1024 * 1024, b, sizeof(b));
    ck_assert_str_eq(b, "498.6 MiB");
    tui_format_bytes(1.5 * 1024 * 1024 * 1024, b, sizeof(b));
    ck_assert_str_eq(b, "1.5 GiB");
    /* a copy cut inside a codepoint keeps only whole ones */
    tui_copy(b, 4, "ab\u00B7c");
    ck_assert_str_eq(b, "ab");
}
END_TEST

START_TEST(assets_found_on_the_path) {
    Fixture f;
    fixture_make(&f);
    /* Each test runs in its own process: the environment is ours. */
    setenv("BILORA_ASSETS", f.root, 1);
    setenv("HOME", f.home, 1);
    unsetenv("BILORA_HOME");
    unsetenv("HF_HOME");
    unsetenv("HF_HUB_CACHE");
    TuiAssets a;
    memset(&a, 0, sizeof(a));
    tui_assets_scan(&a);
    ck_assert_int_eq(a.n_models, 1);
    ck_assert_str_eq(a.models[0].name, "tiny");
    ck_assert_str_eq(a.models[0].type, "bert");
    ck_assert_int_eq(a.models[0].layers, 2);
    ck_assert_int_eq(a.models[0].hidden, 8);
    ck_assert(a.models[0].params > 100 && a.models[0].bytes > a.models[0].params * 4);
    ck_assert_int_eq(a.n_tasks, 1);
    ck_assert_str_eq(a.tasks[0].name, "SST-2");
    ck_assert_int_eq(a.tasks[0].n_train, 96);
    ck_assert_int_eq(a.tasks[0].n_dev, 24);
    ck_assert_int_eq(a.n_roots, 2);
    ck_assert_str_eq(a.roots[0], f.root);
    char want[1024];
    snprintf(want, sizeof(want), "%s/.cache/bilora", f.home);
    ck_assert_str_eq(a.roots[1], want);
    snprintf(want, sizeof(want), "%s/.cache/huggingface/hub", f.home);
    ck_assert_str_eq(a.hub, want);
    ck_assert(picker_usable(&a));

    /* E2E data on the path is offered after the GLUE tasks, and only to a
     * gpt2: with this bert it does not fit (Enter stays, the line says why) */
    char e2e[1100];
    snprintf(e2e, sizeof(e2e), "%s/data/e2e", f.root);
    ck_assert_int_eq(mkdir(e2e, 0755), 0);
    for (int k = 0; k < 2; k++) {
        snprintf(e2e, sizeof(e2e), "%s/data/e2e/%s", f.root, k ? "devset.csv" : "trainset.csv");
        FILE *ef = fopen(e2e, "w");
        ck_assert_ptr_nonnull(ef);
        fputs("mr,ref\n\"name[Aromi], food[Thai]\",Aromi serves Thai food.\n", ef);
        if (!k) fputs("\"name[Cotto], food[Thai]\",Cotto has Thai food.\n", ef);
        fclose(ef);
    }
    tui_assets_scan(&a);
    ck_assert_int_eq(a.n_tasks, 2);
    ck_assert_str_eq(a.tasks[1].name, "E2E");
    ck_assert(a.tasks[1].lm && !a.tasks[0].lm);
    ck_assert_int_eq(a.tasks[1].n_train, 2);
    ck_assert_int_eq(a.tasks[1].n_dev, 1);
    ck_assert(picker_task_fits(&a, 0, 0));
    ck_assert(!picker_task_fits(&a, 0, 1));
    snprintf(a.models[0].type, sizeof(a.models[0].type), "gpt2");
    ck_assert(picker_task_fits(&a, 0, 1));

    /* --model DIR off the asset path joins the list (once); a folder
     * without a config.json does not */
    char outside[1100];
    snprintf(outside, sizeof(outside), "%s/model", f.dir);
    int before = a.n_models;
    int at = tui_assets_add_model(&a, outside);
    ck_assert_int_eq(at, before);
    ck_assert_int_eq(a.n_models, before + 1);
    ck_assert_str_eq(a.models[at].dir, outside);
    ck_assert_str_eq(a.models[at].type, "bert");
    ck_assert_int_eq(tui_assets_add_model(&a, outside), at);
    ck_assert_int_eq(a.n_models, before + 1);
    ck_assert_int_eq(tui_assets_add_model(&a, f.empty), -1);

    /* A model whose config cannot be read ("aaa" sorts first) is listed
     * last: the first row, the one selected, can train. */
    char bad[1024];
    snprintf(bad, sizeof(bad), "%s/models/aaa-broken", f.root);
    ck_assert_int_eq(mkdir(bad, 0755), 0);
    snprintf(bad, sizeof(bad), "%s/models/aaa-broken/config.json", f.root);
    FILE *cf = fopen(bad, "w");
    ck_assert_ptr_nonnull(cf);
    fputs("{\"model_type\": \"mamba\"}\n", cf);
    fclose(cf);
    char w[1100];
    snprintf(w, sizeof(w), "%s/models/aaa-broken/model.safetensors", f.root);
    snprintf(bad, sizeof(bad), "%s/model/model.safetensors", f.dir);
    ck_assert_int_eq(symlink(bad, w), 0);
    tui_assets_scan(&a);
    ck_assert_int_eq(a.n_models, 2);
    ck_assert_str_eq(a.models[0].name, "tiny");
    ck_assert_str_eq(a.models[1].name, "aaa-broken");
    ck_assert_msg(a.models[1].problem[0] && !a.models[1].type[0], "%s", a.models[1].problem);

    /* An empty root: nothing usable, and BILORA_HOME replaces the default. */
    setenv("BILORA_ASSETS", f.empty, 1);
    setenv("BILORA_HOME", f.home, 1);
    tui_assets_scan(&a);
    ck_assert_int_eq(a.n_models, 0);
    ck_assert_int_eq(a.n_tasks, 0);
    ck_assert(!picker_usable(&a));
    ck_assert_str_eq(a.roots[1], f.home);
    Grid g;
    ck_assert_int_eq(grid_init(&g, 80, 24), 0);
    Picker p = {0, {0, 0, 0}};
    DrawOpts o = {0, 0};
    picker_draw(&g, &p, &a, &o);
    char *text = grid_dump_text(&g);
    ck_assert_msg(strstr(text, "No models found"), "%s", text);
    ck_assert_msg(strstr(text, "BILORA_HOME"), "%s", text);
    free(text);
    grid_free(&g);
    tui_assets_free(&a);
    fixture_rmdir(f.dir);
}
END_TEST

START_TEST(pick_run_pause_tune_resize_quit) {
    Fixture f;
    fixture_make(&f);
    const char *bin = bilora_bin();
    /* Many steps, so the run is still going when the test looks; small
     * batches and frequent evaluations, so charts and the log fill. */
    char *argv[] = {(char *)bin, "tui", "--steps", "1000000", "--batch-size", "8", "--eval-every", "50", NULL};
    Term t;
    term_start(&t, 80, 24, argv, fixture_env(&f, f.root, "C.UTF-8", 0));

    /* The picker: the fixture's model with its type and size, the task
     * with its example counts, the methods. */
    WAIT(&t, "step 1 of 3", 10000);
    WAIT(&t, "tiny", 2000);
    ck_assert_msg(strstr(t.screen, "bert"), "model type missing:\n%s", t.screen);
    ck_assert_msg(strstr(t.screen, "KiB"), "model size missing:\n%s", t.screen);
    ck_assert_msg(strstr(t.screen, "SST-2") && strstr(t.screen, "96 train") && strstr(t.screen, "24 dev"),
                  "task with its example counts missing:\n%s", t.screen);
    ck_assert_msg(strstr(t.screen, "bilora") && strstr(t.screen, "lora"), "methods missing:\n%s", t.screen);

    term_send(&t, ENTER);
    WAIT(&t, "step 2 of 3", 3000);
    term_send(&t, ENTER);
    WAIT(&t, "step 3 of 3", 3000);
    term_send(&t, KEY_DOWN KEY_DOWN KEY_DOWN KEY_DOWN);
    WAIT(&t, "\u25B8 bilora", 3000);
    term_send(&t, ENTER);

    /* The setup form, filled from the picks and the flags. */
    WAIT(&t, "set up the run", 3000);
    ck_assert_msg(strstr(t.screen, "tiny \u00B7 SST-2 \u00B7 bilora"), "form title:\n%s", t.screen);
    ck_assert_msg(strstr(t.screen, "\u25B8 model"), "form selection:\n%s", t.screen);

    term_send(&t, "r");
    WAIT_ROW(&t, 0, "running", 10000);
    long s1 = stats_step(&t);
    double end = now_ms() + 10000;
    long s2 = s1;
    while (s2 <= s1 && now_ms() < end) {
        term_pump(&t, 100);
        s2 = stats_step(&t);
    }
    ck_assert_msg(s2 > s1, "the step count did not rise (%ld, %ld):\n%s", s1, s2, t.screen);
    WAIT(&t, "eval", 10000); /* an evaluation in the log */

    term_send(&t, "p");
    WAIT_ROW(&t, 0, "paused", 5000);

    /* Tune lower-lr while paused: the form, find the field, type. */
    term_send(&t, "t");
    WAIT(&t, "tune \u00B7", 3000);
    term_send(&t, "/lower-lr" ENTER);
    WAIT(&t, "\u25B8 lower-lr", 3000);
    term_send(&t, ENTER);
    term_send(&t, "\025" "1e-4" ENTER); /* ^U clears the old text */
    WAIT(&t, "lower-lr = 1e-4, applied at the next step", 3000);
    /* a cold setting is refused with the form's reason */
    term_send(&t, "/rank" ENTER);
    WAIT(&t, "\u25B8 rank", 3000);
    term_send(&t, ENTER);
    WAIT(&t, "rank needs a new run", 3000);
    term_esc(&t);
    WAIT(&t, "Events", 3000);
    WAIT(&t, "lower-lr 5e-4 \u2192 1e-4 (live)", 5000);
    ck_assert_msg(strstr(t.screen, "set "), "the change is not tagged 'set':\n%s", t.screen);

    /* Too small, then bigger: a clean frame each time. */
    term_resize(&t, 60, 20);
    WAIT(&t, "terminal too small", 3000);
    term_resize(&t, 100, 30);
    WAIT_ROW(&t, 29, "quit", 3000);
    term_pump(&t, 300);
    check_frame(&t, 100, 30);
    ck_assert_msg(!strstr(t.screen, "too small"), "stale text after the resize:\n%s", t.screen);

    term_send(&t, "p");
    WAIT_ROW(&t, 0, "running", 5000);

    /* Quit asks first; n stays; y quits. */
    term_send(&t, "q");
    WAIT(&t, "discard the unsaved run", 3000);
    term_send(&t, "n");
    WAIT_ROW(&t, 29, "quit", 3000);
    ck_assert_msg(!t.exited, "quit without a yes");
    term_send(&t, "q");
    WAIT(&t, "discard the unsaved run", 3000);
    term_send(&t, "y");
    ck_assert_int_eq(term_finish(&t, 10000), 0);
    fixture_rmdir(f.dir);
}
END_TEST

START_TEST(empty_asset_path_says_where) {
    Fixture f;
    fixture_make(&f);
    /* `bilora` with no arguments at all opens the workbench. */
    char *argv[] = {(char *)bilora_bin(), NULL};
    Term t;
    term_start(&t, 80, 24, argv, fixture_env(&f, f.empty, "C.UTF-8", 0));
    WAIT(&t, "No models found", 10000);
    /* the whole screen, not the first rows of a frame still arriving (a
     * starved terminal delivers it in pieces) */
    WAIT(&t, "bilora fetch", 10000);
    char want[1024];
    snprintf(want, sizeof(want), "%s/models/<name>/", f.empty);
    ck_assert_msg(strstr(t.screen, want), "the BILORA_ASSETS root is not listed (%s):\n%s", want, t.screen);
    ck_assert_msg(strstr(t.screen, "BILORA_ASSETS "), "roots not explained:\n%s", t.screen);
    snprintf(want, sizeof(want), "%s/.cache/bilora/models/<name>/", f.home);
    ck_assert_msg(strstr(t.screen, want), "the default home is not listed (%s):\n%s", want, t.screen);
    snprintf(want, sizeof(want), "%s/.cache/huggingface/hub", f.home);
    ck_assert_msg(strstr(t.screen, want), "the Hugging Face cache is not listed:\n%s", t.screen);
    ck_assert_msg(strstr(t.screen, "bilora fetch"), "no hint how to get assets:\n%s", t.screen);
    term_send(&t, "q");
    ck_assert_int_eq(term_finish(&t, 5000), 0);
    fixture_rmdir(f.dir);
}
END_TEST

START_TEST(compare_two_methods) {
    Fixture f;
    fixture_make(&f);
    char *argv[] = {(char *)bilora_bin(), "tui", "--model", "tiny", "--task", "SST-2", "--method", "bilora",
                    "--compare", "lora", "--steps", "1000000", "--batch-size", "8", "--eval-every", "50", NULL};
    Term t;
    term_start(&t, 80, 24, argv, fixture_env(&f, f.root, "C.UTF-8", 0));
    WAIT_ROW(&t, 1, "tiny \u00B7 SST-2", 10000);
    WAIT_ROW(&t, 0, "\u25CF bilora", 10000);
    WAIT_ROW(&t, 0, "\u25CF lora", 10000);
    /* Both runs' curves in the legend, both progress bars. */
    WAIT(&t, "bilora dev", 10000);
    ck_assert_msg(strstr(t.screen, "lora dev"), "second run's dev curve missing:\n%s", t.screen);
    WAIT(&t, "lora: ", 10000); /* events name their run */
    /* ^C asks like q (it is a key here, not a signal); a second one quits. */
    term_send(&t, "\003");
    WAIT(&t, "discard the unsaved bilora run", 3000); /* it names which of the two */
    ck_assert_msg(!t.exited, "^C quit without asking");
    term_send(&t, "\003");
    ck_assert_int_eq(term_finish(&t, 10000), 0);
    fixture_rmdir(f.dir);
}
END_TEST

START_TEST(ascii_without_colour) {
    Fixture f;
    fixture_make(&f);
    char *argv[] = {(char *)bilora_bin(), "tui", "--model", "tiny", "--task", "SST-2", "--steps", "1000000",
                    "--batch-size", "8", "--eval-every", "50", NULL};
    Term t;
    /* A locale without UTF-8 and NO_COLOR: ASCII drawing, no colours. */
    term_start(&t, 80, 24, argv, fixture_env(&f, f.root, "C", 1));
    WAIT_ROW(&t, 0, "running", 10000);
    WAIT(&t, "eval", 10000);
    ck_assert_msg(t.vt.cell[2][0] == '+' && t.vt.cell[2][79] == '+', "boxes are not ASCII:\n%s", t.screen);
    ck_assert_msg(!t.vt.non_ascii, "a byte >= 0x80 was sent:\n%s", t.screen);
    ck_assert_msg(!t.vt.saw_colour, "a colour was set with NO_COLOR");
    term_send(&t, "q");
    WAIT(&t, "discard the unsaved run", 3000);
    term_send(&t, "y");
    ck_assert_int_eq(term_finish(&t, 10000), 0);
    fixture_rmdir(f.dir);
}
END_TEST

/* The session browser: with none saved it says so and where they are kept;
 * a session saved at step 20 opens on the dashboard at step 20 and goes on,
 * and w saves back to the same name. */
START_TEST(session_browser_opens_saved_run) {
    Fixture f;
    fixture_make(&f);
    char sroot[300];
    snprintf(sroot, sizeof(sroot), "%s/sessions", f.dir);
    char *const *env = fixture_env(&f, f.root, "C.UTF-8", 0);
    int n = 0;
    while (env[n]) n++;
    snprintf(f.env[n], sizeof(f.env[0]), "BILORA_SESSIONS=%s", sroot);
    f.envp[n] = f.env[n];
    f.envp[n + 1] = NULL;
    char *argv[] = {(char *)bilora_bin(), "tui", NULL};

    /* None yet. */
    Term t;
    term_start(&t, 80, 24, argv, f.envp);
    WAIT(&t, "step 1 of 3", 10000);
    ck_assert_msg(strstr(t.screen, "saved runs"), "o is not offered in the picker:\n%s", t.screen);
    term_send(&t, "o");
    WAIT(&t, "No saved sessions", 3000);
    ck_assert_msg(strstr(t.screen, sroot), "the sessions root is not shown (%s):\n%s", sroot, t.screen);
    term_esc(&t);
    WAIT(&t, "step 1 of 3", 3000);
    term_send(&t, "q");
    ck_assert_int_eq(term_finish(&t, 5000), 0);

    /* Save one at step 20, through the API. */
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/model", f.dir);
    snprintf(c.task, sizeof(c.task), "SST-2");
    snprintf(c.data, sizeof(c.data), "%s/SST-2", f.dir);
    snprintf(c.method, sizeof(c.method), "lora");
    c.batch_size = 8;
    c.steps = 1000000;
    c.eval_every = 50;
    char err[1024];
    Run *r = NULL;
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < 20; i++) ck_assert_msg(run_step(r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(session_save(sroot, "s1", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);

    /* Open it: listed with its task, method and step; the dashboard
     * starts at step 20 and goes on. */
    term_start(&t, 80, 24, argv, f.envp);
    WAIT(&t, "step 1 of 3", 10000);
    term_send(&t, "o");
    WAIT(&t, "s1", 3000);
    ck_assert_msg(strstr(t.screen, "SST-2") && strstr(t.screen, "lora") && strstr(t.screen, "20/1,000,000"),
                  "the listing lacks task, method or step:\n%s", t.screen);
    term_send(&t, ENTER);
    WAIT_ROW(&t, 23, "opened session 's1' at step 20", 10000);
    long first = -1;
    double until = now_ms() + 10000;
    while (now_ms() < until && (first = stats_step(&t)) <= 0) term_pump(&t, 50);
    ck_assert_msg(first >= 20, "the dashboard did not resume at step 20 (%ld):\n%s", first, t.screen);
    WAIT_ROW(&t, 0, "/1,000,000", 3000);
    until = now_ms() + 10000;
    while (now_ms() < until && stats_step(&t) <= 20) term_pump(&t, 50);
    ck_assert_msg(stats_step(&t) > 20, "the run did not go on past step 20:\n%s", t.screen);
    /* w saves back to s1. */
    /* The confirmation stays in the status line for seconds: the event
     * log scrolls it away at once at this model's evaluation rate. */
    term_send(&t, "w");
    WAIT_ROW(&t, 23, "saved session 's1' at step", 10000);
    term_send(&t, "p");
    WAIT_ROW(&t, 0, "paused", 5000);
    term_pump(&t, 300);
    long paused_at = stats_step(&t);
    /* q, then the prompt's "w: save first": it saves, then quits */
    term_send(&t, "q");
    int asked = term_wait(&t, "discard the unsaved run", 3000);
    if (asked) term_send(&t, "w");
    ck_assert_int_eq(term_finish(&t, 10000), 0);
    SessionSummary sum;
    ck_assert_msg(session_summary(sroot, "s1", &sum, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(sum.step > 20, "w did not save back to s1 (step %ld)", sum.step);
    if (asked) ck_assert_msg(sum.step == paused_at, "save-first saved step %ld, paused at %ld", sum.step, paused_at);

    /* A session that cannot load says so, and does not claim it opened. */
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(run_step(r, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(session_save(sroot, "s2", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
    char bin[400];
    snprintf(bin, sizeof(bin), "%s/s2/state.bin", sroot);
    ck_assert_int_eq(truncate(bin, 16), 0);
    term_start(&t, 120, 50, argv, f.envp); /* room in the event log for the whole reason */
    WAIT(&t, "step 1 of 3", 10000);
    term_send(&t, "o");
    WAIT(&t, "s2", 3000);
    term_send(&t, KEY_DOWN); /* s1, s2 by name */
    term_send(&t, ENTER);
    WAIT(&t, "could not open session 's2'", 10000);
    ck_assert_msg(!strstr(t.screen, "opened session 's2'"), "a failed open claims success:\n%s", t.screen);
    term_send(&t, "q");
    if (term_wait(&t, "discard", 1000)) term_send(&t, "y");
    ck_assert_int_eq(term_finish(&t, 10000), 0);
    fixture_rmdir(f.dir);
}
END_TEST

START_TEST(needs_a_terminal) {
    /* stdin and stdout not a terminal: a message and status 2, not a
     * screen of escape codes in a pipe. */
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(out[0]);
        char *argv[] = {(char *)bilora_bin(), NULL};
        char *env[] = {"TERM=xterm-256color", "HOME=/nonexistent", NULL};
        execve(argv[0], argv, env);
        _exit(127);
    }
    close(out[1]);
    char buf[4096];
    size_t k = 0;
    ssize_t n;
    while (k + 1 < sizeof(buf) && (n = read(out[0], buf + k, sizeof(buf) - 1 - k)) > 0) k += (size_t)n;
    buf[k] = 0;
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
    ck_assert_msg(strstr(buf, "needs a terminal"), "message: %s", buf);
    ck_assert_msg(!strchr(buf, '\033'), "escape codes in a pipe: %s", buf);
}
END_TEST

int main(void) {
    /* The interpreter measures glyphs with wcwidth and prints with wcrtomb. */
    if (!setlocale(LC_CTYPE, "C.UTF-8")) setlocale(LC_CTYPE, "en_US.UTF-8");
    Suite *s = suite_create("tui");
    TCase *pure = tcase_create("pure");
    tcase_set_timeout(pure, 30);
    tcase_add_test(pure, event_lines_are_read);
    tcase_add_test(pure, dashboard_view_from_trainer_views);
    tcase_add_test(pure, sizes_read_short);
    tcase_add_test(pure, assets_found_on_the_path);
    suite_add_tcase(s, pure);
    TCase *tc = tcase_create("terminal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pick_run_pause_tune_resize_quit);
    tcase_add_test(tc, empty_asset_path_says_where);
    tcase_add_test(tc, compare_two_methods);
    tcase_add_test(tc, ascii_without_colour);
    tcase_add_test(tc, session_browser_opens_saved_run);
    tcase_add_test(tc, needs_a_terminal);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
