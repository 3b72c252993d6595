/* Tests for the drawing layer of the workbench (ui/grid, chart, heatmap,
 * histogram, form, panels): everything renders into a character grid, so
 * screens are compared as text against golden files, and the pieces with
 * arithmetic in them (ticks, smoothing, Braille dots, UTF-8 widths,
 * validation messages, layout) have unit tests with hand-computed values.
 *
 * The Makefile links the ui sources into ./bilora only, not into the test binaries,
 * so this file compiles the drawing sources itself, by including them. They
 * need nothing but libc, libm and utf8proc (all on the test link line).
 *
 * Golden files: tests/golden/<name>.txt hold the grid as text, then
 * "-- styles --" and one line per row with a letter per cell's style, then
 * what each letter means. BILORA_UPDATE_GOLDEN=1 rewrites them from the
 * current output (then read them: a golden file is only as right as the
 * eye that checked it). On a mismatch the output goes to
 * build/tests/golden-actual/<name>.txt for a diff. The tests look for
 * tests/golden from the working directory (the repository root, as
 * scripts/run-tests.sh runs them); BILORA_GOLDEN_DIR overrides it. */
#include "ui/grid.c"
#include "ui/chart.c"
#include "ui/heatmap.c"
#include "ui/histogram.c"
#include "ui/form.c"
#include "ui/panels.c"

#include <check.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- golden files ------------------------------------------------------ */

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int write_all(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(s);
    int ok = fwrite(s, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void mkdirs(const char *path) {
    char p[512];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0755); *s = '/'; }
    mkdir(p, 0755);
}

static char *grid_golden_text(const Grid *g) {
    char *t = grid_dump_text(g), *s = grid_dump_styles(g);
    ck_assert(t && s);
    size_t n = strlen(t) + strlen(s) + 32;
    char *all = malloc(n);
    snprintf(all, n, "%s-- styles --\n%s", t, s);
    free(t);
    free(s);
    return all;
}

static void check_golden(const char *name, const Grid *g) {
    const char *dir = getenv("BILORA_GOLDEN_DIR");
    if (!dir || !*dir) dir = "tests/golden";
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.txt", dir, name);
    char *got = grid_golden_text(g);
    const char *upd = getenv("BILORA_UPDATE_GOLDEN");
    if (upd && !strcmp(upd, "1")) {
        mkdirs(dir);
        ck_assert_msg(write_all(path, got) == 0, "cannot write %s: %s", path, strerror(errno));
        free(got);
        return;
    }
    char *want = read_all(path);
    ck_assert_msg(want != NULL, "golden file %s is missing (run from the repository root, or "
                                "BILORA_UPDATE_GOLDEN=1 to create it)", path);
    if (strcmp(want, got) != 0) {
        mkdirs("build/tests/golden-actual");
        char apath[512];
        snprintf(apath, sizeof(apath), "build/tests/golden-actual/%s.txt", name);
        write_all(apath, got);
        /* Name the first line that differs. */
        int line = 1;
        const char *a = want, *b = got;
        while (*a && *a == *b) { if (*a == '\n') line++; a++; b++; }
        ck_abort_msg("%s differs from the golden file at line %d; actual output in %s (diff them)", path, line,
                     apath);
    }
    free(want);
    free(got);
}

/* ---- fixtures: a bilora run on RTE, 1,200 of 3,000 steps --------------- */

/* Deterministic noise in [-1, 1]: a hash of the index, no state. */
static double noise(unsigned i) {
    uint32_t h = i * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return (double)(h % 20001u) / 10000.0 - 1.0;
}

#define N_TRAIN 121   /* every 10 steps, 0..1200 */
#define N_DEV 13      /* every 100 steps */
#define N_ROWS 24     /* 12 layers x query, value */
#define RANK 8

typedef struct {
    double tx[N_TRAIN], lower[N_TRAIN], upper[N_TRAIN];
    double dx[N_DEV], dev[N_DEV], acc[N_DEV];
    double lora_lower[N_TRAIN], lora_dev[N_DEV], lora_acc[N_DEV];
    char names[N_ROWS][16];
    const char *name_ptr[N_ROWS];
    double sv[N_ROWS * RANK];
    ChartSeries loss[3], metric[1];
    ChartSeries cmp_loss[4], cmp_metric[2];
    DashEvent events[6];
} Fixture;

static void fixture_init(Fixture *f) {
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < N_TRAIN; i++) {
        double s = i * 10.0;
        f->tx[i] = s;
        /* Training loss falls from ln 2 toward 0.15, noisily; the upper
         * (D2) loss tracks it a little above. */
        f->lower[i] = 0.15 + 0.55 * exp(-s / 350.0) + 0.06 * noise((unsigned)i);
        f->upper[i] = 0.25 + 0.45 * exp(-s / 450.0) + 0.05 * noise((unsigned)i + 1000);
        f->lora_lower[i] = 0.08 + 0.62 * exp(-s / 250.0) + 0.05 * noise((unsigned)i + 2000);
    }
    f->lower[57] = NAN;       /* a skipped sample: the line must break, not dive */
    f->upper[90] = INFINITY;
    for (int i = 0; i < N_DEV; i++) {
        double s = i * 100.0;
        f->dx[i] = s;
        /* Dev loss: down, then up again as the model overfits (lora more). */
        f->dev[i] = 0.42 + 0.28 * exp(-s / 300.0) + 0.00000008 * s * s;
        f->lora_dev[i] = 0.40 + 0.30 * exp(-s / 250.0) + 0.00000022 * s * s;
        f->acc[i] = 0.53 + 0.22 * (1 - exp(-s / 300.0)) - 0.00000003 * s * s;
        f->lora_acc[i] = 0.53 + 0.21 * (1 - exp(-s / 250.0)) - 0.00000008 * s * s;
    }
    static const char *const KIND[2] = {"query", "value"};
    for (int r = 0; r < N_ROWS; r++) {
        snprintf(f->names[r], sizeof(f->names[r]), "L%d.%s", r / 2, KIND[r % 2]);
        f->name_ptr[r] = f->names[r];
        /* A decaying spectrum, deeper layers stronger, a dead tail in some. */
        for (int k = 0; k < RANK; k++) {
            double v = (0.6 + 0.08 * (r / 2)) * exp(-k / (1.5 + (r % 3))) + 0.02 * noise((unsigned)(r * RANK + k));
            f->sv[r * RANK + k] = v < 0 ? 0 : v;
        }
    }
    f->sv[3 * RANK + 7] = NAN; /* a missing index (rank pruned) */
    f->sv[4 * RANK + 6] = 0.0;

    ChartSeries lower = {"lower", f->tx, f->lower, N_TRAIN, GC_CYAN, 0, '*'};
    ChartSeries upper = {"upper", f->tx, f->upper, N_TRAIN, GC_MAGENTA, GA_UNDERLINE, '+'};
    ChartSeries dev = {"dev", f->dx, f->dev, N_DEV, GC_YELLOW, GA_BOLD, 'o'};
    ChartSeries acc = {"dev", f->dx, f->acc, N_DEV, GC_YELLOW, GA_BOLD, 'o'};
    f->loss[0] = lower;
    f->loss[1] = upper;
    f->loss[2] = dev;
    f->metric[0] = acc;

    ChartSeries a_train = {"lora", f->tx, f->lora_lower, N_TRAIN, GC_BLUE, 0, '.'};
    ChartSeries a_dev = {"lora dev", f->dx, f->lora_dev, N_DEV, GC_BLUE, GA_BOLD, 'o'};
    ChartSeries b_train = {"bilora", f->tx, f->lower, N_TRAIN, GC_MAGENTA, GA_UNDERLINE, '+'};
    ChartSeries b_dev = {"bilora dev", f->dx, f->dev, N_DEV, GC_MAGENTA, GA_BOLD | GA_UNDERLINE, '#'};
    /* At 80 columns four legend entries share 38 cells: the training
     * curves carry the run's name alone, the dev curves (bold) say "dev". */
    f->cmp_loss[0] = a_train;
    f->cmp_loss[1] = a_dev;
    f->cmp_loss[2] = b_train;
    f->cmp_loss[3] = b_dev;
    ChartSeries a_acc = {"lora", f->dx, f->lora_acc, N_DEV, GC_BLUE, 0, 'o'};
    ChartSeries b_acc = {"bilora", f->dx, f->acc, N_DEV, GC_MAGENTA, GA_UNDERLINE, '#'};
    f->cmp_metric[0] = a_acc;
    f->cmp_metric[1] = b_acc;

    DashEvent ev[6] = {
        {-1, DASH_EV_INFO, "roberta-base: 124.6M parameters, 0.30M trainable (rank 8, query,value)"},
        {-1, DASH_EV_INFO, "RTE: 2,490 train (D1 1,992 / D2 498), 277 dev"},
        {500, DASH_EV_EVAL, "dev loss 0.4776  accuracy 0.7134"},
        {820, DASH_EV_CHANGE, "lower-lr 5e-4 \u2192 3e-4 (live)"},
        {1000, DASH_EV_EVAL, "dev loss 0.5129  accuracy 0.7207"},
        {1130, DASH_EV_WARN, "dev loss up 3 evaluations in a row: overfitting?"},
    };
    memcpy(f->events, ev, sizeof(ev));
}

static DashView fixture_view(const Fixture *f) {
    DashView v;
    memset(&v, 0, sizeof(v));
    v.title = "roberta-base \u00B7 RTE \u00B7 bilora";
    DashRun run = {"bilora", "running", 1200, 3000, 1.93, 412.3, 274.0, GC_GREEN};
    v.runs[0] = run;
    v.n_runs = 1;
    v.device = "cpu";
    v.mem_bytes = 1.23 * 1024 * 1024 * 1024;
    v.loss = f->loss;
    v.n_loss = 3;
    v.metric = f->metric;
    v.n_metric = 1;
    v.metric_name = "accuracy";
    v.smoothing = 0.6;
    v.log_y = 0;
    HeatmapSpec hs = {f->name_ptr, f->sv, N_ROWS, RANK, 5};
    v.spectrum = hs;
    v.events = f->events;
    v.n_events = 6;
    return v;
}

static Grid new_grid(int w, int h) {
    Grid g;
    ck_assert_int_eq(grid_init(&g, w, h), 0);
    return g;
}

static const DrawOpts UNI = {1, 1}, ASC = {0, 1}, MONO = {1, 0}, ASC_MONO = {0, 0};

/* ---- grid and UTF-8 ----------------------------------------------------- */

START_TEST(test_utf8_width)
{
    ck_assert_int_eq(utf8_width(""), 0);
    ck_assert_int_eq(utf8_width("loss"), 4);
    ck_assert_int_eq(utf8_width("\u03C3 \u00B7 \u2502"), 5);       /* σ · │: narrow */
    ck_assert_int_eq(utf8_width("\u65E5\u672C"), 4);               /* 日本: wide */
    ck_assert_int_eq(utf8_width("e\u0301"), 1);                    /* combining accent: 0 */
    ck_assert_int_eq(utf8_width("\x01"), 1);                       /* control: drawn as '?' */
    ck_assert_int_eq(utf8_width("\xFF"), 1);                       /* bad byte: U+FFFD */
    ck_assert_int_eq(utf8_width("\xE2\x94"), 2);                   /* truncated: one U+FFFD per byte */
    ck_assert_int_eq(utf8_width("\u28FF\u2588\u2591"), 3);        /* Braille and blocks: 1 each */

    uint32_t cp;
    ck_assert_int_eq(utf8_decode("\xC3\xA9", 2, &cp), 2);
    ck_assert_uint_eq(cp, 0xE9);
    ck_assert_int_eq(utf8_decode("\xF0\x9F\x98\x80", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x1F600);
    ck_assert_int_eq(utf8_decode("\xC0\xAF", 2, &cp), 1);          /* overlong '/' */
    ck_assert_uint_eq(cp, 0xFFFD);
    ck_assert_int_eq(utf8_decode("\xED\xA0\x80", 3, &cp), 1);      /* surrogate */
    ck_assert_uint_eq(cp, 0xFFFD);
    ck_assert_int_eq(utf8_decode("\xE2\x94\x80", 2, &cp), 1);      /* cut short by len */
    ck_assert_uint_eq(cp, 0xFFFD);

    char out[4];
    ck_assert_int_eq(utf8_encode(0x28FF, out), 3);
    ck_assert(memcmp(out, "\xE2\xA3\xBF", 3) == 0);                /* ⣿ */
    ck_assert_int_eq(utf8_encode('A', out), 1);
    ck_assert_int_eq(utf8_encode(0x1F600, out), 4);
}
END_TEST

START_TEST(test_grid_text_clipping)
{
    Grid g = new_grid(6, 2);
    Style st = gstyle(0, 0, 0);
    /* maxw clips, and a wide glyph that would straddle the limit is left out */
    ck_assert_int_eq(grid_text(&g, 0, 0, 4, st, "a\u65E5\u672Cz"), 3);
    char *t = grid_dump_text(&g);
    ck_assert_str_eq(t, "a\u65E5\n\n");
    free(t);
    ck_assert_uint_eq(grid_at(&g, 2, 0)->cp, GRID_CONT);
    /* the grid's edge clips too: no wide glyph half off the right edge */
    ck_assert_int_eq(grid_text(&g, 4, 1, 10, st, "x\u65E5"), 1);
    ck_assert_uint_eq(grid_at(&g, 5, 1)->cp, ' ');
    /* negative x: the part left of the grid is skipped */
    ck_assert_int_eq(grid_text(&g, -2, 1, 10, st, "abcd"), 4);
    ck_assert_uint_eq(grid_at(&g, 0, 1)->cp, 'c');
    /* writing over half of a wide glyph blanks the other half */
    grid_put(&g, 2, 0, 'R', st);
    ck_assert_uint_eq(grid_at(&g, 1, 0)->cp, ' ');
    ck_assert_uint_eq(grid_at(&g, 2, 0)->cp, 'R');
    grid_text(&g, 0, 0, 6, st, "\u65E5\u65E5\u65E5");
    grid_put(&g, 2, 0, 'L', st);
    ck_assert_uint_eq(grid_at(&g, 3, 0)->cp, ' ');
    t = grid_dump_text(&g);
    ck_assert_str_eq(t, "\u65E5L \u65E5\ncd  x\n");
    free(t);
    /* out of the grid: nothing, no crash */
    ck_assert_int_eq(grid_text(&g, 0, 7, 5, st, "zz"), 0);
    ck_assert_int_eq(grid_put(&g, 6, 0, 'q', st), 0);
    /* ellipsis */
    grid_clear(&g, grect(0, 0, 6, 2), st);
    ck_assert_int_eq(grid_text_fit(&g, 0, 0, 5, st, "L10.attention_output", 1), 5);
    ck_assert_int_eq(grid_text_fit(&g, 0, 1, 5, st, "L10.attention_output", 0), 5);
    t = grid_dump_text(&g);
    ck_assert_str_eq(t, "L10.\u2026\nL10.~\n");
    free(t);
    /* control characters never reach the terminal */
    grid_text(&g, 0, 0, 6, st, "a\x1b[2J");
    ck_assert_uint_eq(grid_at(&g, 1, 0)->cp, '?');
    grid_free(&g);
}
END_TEST

START_TEST(test_grid_box_and_styles)
{
    Grid g = new_grid(12, 3);
    grid_box(&g, grect(0, 0, 12, 3), gstyle(GC_BLUE, 0, 0), "Loss", gstyle(0, 0, GA_BOLD), 1);
    char *t = grid_dump_text(&g), *s = grid_dump_styles(&g);
    ck_assert_str_eq(t, "\u256D\u2500 Loss \u2500\u2500\u2500\u256E\n\u2502          \u2502\n"
                        "\u2570\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u256F\n");
    ck_assert_str_eq(s, "aaabbbbaaaaa\na..........a\naaaaaaaaaaaa\na fg=blue\nb fg=default bold\n");
    free(t);
    free(s);
    grid_box(&g, grect(0, 0, 12, 3), gstyle(0, 0, 0), "A title far too long", gstyle(0, 0, 0), 0);
    t = grid_dump_text(&g);
    ck_assert_str_eq(t, "+- A tit~ -+\n|          |\n+----------+\n");
    free(t);
    /* colour-free mode: colours and DIM go, mono_attr comes in */
    Style m = style_pick(&MONO, GC_RED, GA_BOLD | GA_DIM, GA_UNDERLINE);
    ck_assert(style_eq(m, gstyle(0, 0, GA_BOLD | GA_UNDERLINE)));
    Style c = style_pick(&UNI, GC_RED, GA_DIM, GA_UNDERLINE);
    ck_assert(style_eq(c, gstyle(GC_RED, 0, GA_DIM)));
    ck_assert(style_eq(style_pick_bg(&MONO, GC_BLACK, GC_CYAN, 0), gstyle(0, 0, GA_REVERSE)));
    grid_free(&g);
    ck_assert_int_eq(grid_init(&g, 0, 5), -1);
}
END_TEST

START_TEST(test_braille_dots)
{
    /* Unicode's dot numbering: 1 2 3 down the left, 4 5 6 down the right,
     * 7 8 along the bottom. Dot k is bit k-1. */
    ck_assert_uint_eq(braille_bit(0, 0), 0x01); /* dot 1 */
    ck_assert_uint_eq(braille_bit(0, 1), 0x02); /* dot 2 */
    ck_assert_uint_eq(braille_bit(0, 2), 0x04); /* dot 3 */
    ck_assert_uint_eq(braille_bit(1, 0), 0x08); /* dot 4 */
    ck_assert_uint_eq(braille_bit(1, 1), 0x10); /* dot 5 */
    ck_assert_uint_eq(braille_bit(1, 2), 0x20); /* dot 6 */
    ck_assert_uint_eq(braille_bit(0, 3), 0x40); /* dot 7 */
    ck_assert_uint_eq(braille_bit(1, 3), 0x80); /* dot 8 */
    ck_assert_uint_eq(braille_bit(2, 0), 0);
    uint32_t all = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 2; x++) all |= braille_bit(x, y);
    ck_assert_uint_eq(BRAILLE_BASE | all, 0x28FF);

    /* Through the chart: a rising line of 4 samples on a 2-cell plot. The
     * plot is 1 row (4 dots) x 2 cells (4 dots); samples at x 0..3, y 0..3
     * land on the dots (0,3) (1,2) (2,1) (3,0): cell 0 gets dots 7 and 6
     * (0x40 | 0x20: ⡠ = U+2860), cell 1 dots 2 and 4 (0x02 | 0x08: ⠊ =
     * U+280A). */
    double x[4] = {0, 1, 2, 3}, y[4] = {0, 1, 2, 3};
    ChartSeries s = {"s", x, y, 4, GC_CYAN, 0, '*'};
    ChartCanvas cv = {0};
    Grid g = new_grid(2, 1);
    cv.g = &g;
    cv.plot = grect(0, 0, 2, 1);
    cv.unicode = 1;
    cv.dpx = 2;
    cv.dpy = 4;
    cv.dots_w = 4;
    cv.dots_h = 4;
    cv.xlo = 0;
    cv.xhi = 3;
    cv.ylo = 0;
    cv.yhi = 3;
    chart_plot(&cv, &s, 0, gstyle(GC_CYAN, 0, 0), '*');
    ck_assert_uint_eq(grid_at(&g, 0, 0)->cp, 0x2860);
    ck_assert_uint_eq(grid_at(&g, 1, 0)->cp, 0x280A);
    grid_free(&g);
}
END_TEST

/* ---- chart arithmetic --------------------------------------------------- */

START_TEST(test_ema_debiasing)
{
    /* w = 0.6, samples 1, 2, 3, by hand:
     *   acc1 = 0.4·1 = 0.4;             debias 1 − 0.6   = 0.4   -> 1
     *   acc2 = 0.6·0.4 + 0.4·2 = 1.04;  debias 1 − 0.36  = 0.64  -> 1.625
     *   acc3 = 0.6·1.04 + 0.4·3 = 1.824; debias 1 − 0.216 = 0.784 -> 2.326530612244898 */
    double y[3] = {1, 2, 3}, out[3];
    chart_smooth(y, 3, 0.6, out);
    ck_assert_double_eq_tol(out[0], 1.0, 1e-15);
    ck_assert_double_eq_tol(out[1], 1.625, 1e-15);
    ck_assert_double_eq_tol(out[2], 1.824 / 0.784, 1e-14);
    /* A NaN is skipped: its output is NaN and the state does not move, so
     * 3 is the second sample: (0.6·0.4 + 0.4·3) / 0.64 = 2.25. */
    double yn[3] = {1, NAN, 3};
    chart_smooth(yn, 3, 0.6, out);
    ck_assert_double_eq_tol(out[0], 1.0, 1e-15);
    ck_assert(isnan(out[1]));
    ck_assert_double_eq_tol(out[2], 2.25, 1e-15);
    /* Debiasing keeps a constant series constant (no ramp up from 0). */
    double yc[4] = {5, 5, 5, 5}, oc[4];
    chart_smooth(yc, 4, 0.9, oc);
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(oc[i], 5.0, 1e-12);
    /* Weight 0: no smoothing. In place works. */
    double yi[3] = {3, -1, 4};
    chart_smooth(yi, 3, 0.0, yi);
    ck_assert_double_eq(yi[0], 3);
    ck_assert_double_eq(yi[1], -1);
    ck_assert_double_eq(yi[2], 4);
    Ema e;
    ema_init(&e, 0.6);
    ck_assert(isnan(ema_push(&e, INFINITY)));
    ck_assert_double_eq_tol(ema_push(&e, 7), 7, 1e-15);
}
END_TEST

START_TEST(test_ticks)
{
    double t[16], step;
    /* covering: 0.32..0.71 in at most 5 ticks -> 0.2 steps from 0.2 to 0.8
     * (0.1 steps would need 6) */
    int n = chart_ticks(0.32, 0.71, 5, t, 16, &step);
    ck_assert_int_eq(n, 4);
    ck_assert_double_eq(step, 0.2);
    ck_assert_double_eq(t[0], 0.2);
    ck_assert_double_eq(t[3], 0.8);
    n = chart_ticks(0, 3000, 4, t, 16, &step);
    ck_assert_int_eq(n, 4);
    ck_assert_double_eq(t[1], 1000);
    ck_assert_double_eq(t[3], 3000);
    n = chart_ticks(-1, 1, 3, t, 16, &step);
    ck_assert_int_eq(n, 3);
    ck_assert_double_eq(t[1], 0);
    /* one value: widened by 10% each side, so it sits mid-axis */
    n = chart_ticks(5, 5, 3, t, 16, &step);
    ck_assert_int_eq(n, 3);
    ck_assert_double_eq(t[0], 4.5);
    ck_assert_double_eq(t[1], 5);
    ck_assert_double_eq(t[2], 5.5);
    /* within: 0.25..1.17 in at most 3 -> 0.5, 1 (0.2 steps would need 4) */
    n = chart_ticks_within(0.25, 1.17, 3, t, 16, &step);
    ck_assert_int_eq(n, 2);
    ck_assert_double_eq(t[0], 0.5);
    ck_assert_double_eq(t[1], 1.0);
    /* ticks are exact decimals, not sums of 0.1s: 0.3 is the double 0.3 */
    n = chart_ticks_within(0.25, 0.35, 3, t, 16, &step);
    ck_assert_int_eq(n, 3);
    ck_assert(t[1] == 0.3);
    /* 0..1200 in at most 5: 200s would be 7, so 500s: 0, 500, 1000 */
    n = chart_ticks_within(0, 1200, 5, t, 16, &step);
    ck_assert_int_eq(n, 3);
    ck_assert_double_eq(step, 500);
    ck_assert_double_eq(t[2], 1000);
    /* log: 0.05..0.7 in at most 4 -> 1-2-5 per decade */
    n = chart_log_ticks(0.05, 0.7, 4, t, 16, &step);
    ck_assert_int_eq(n, 4);
    ck_assert_double_eq_tol(t[0], 0.05, 1e-15);
    ck_assert_double_eq_tol(t[1], 0.1, 1e-15);
    ck_assert_double_eq_tol(t[2], 0.2, 1e-15);
    ck_assert_double_eq_tol(t[3], 0.5, 1e-15);
    /* 1e-4..10 in at most 4: every other decade */
    n = chart_log_ticks(1e-4, 10, 4, t, 16, &step);
    ck_assert_int_eq(n, 3);
    ck_assert_double_eq_tol(t[0], 1e-4, 1e-19);
    ck_assert_double_eq_tol(t[1], 1e-2, 1e-17);
    ck_assert_double_eq_tol(t[2], 1, 1e-15);
    /* too narrow for two 1..9 ticks: linear ones inside; 0.02 steps would
     * be 4 (0.32..0.38), so 0.05 steps: just 0.35 */
    n = chart_log_ticks(0.31, 0.38, 3, t, 16, &step);
    ck_assert_int_eq(n, 1);
    ck_assert_double_eq_tol(t[0], 0.35, 1e-15);
    n = chart_log_ticks(0.31, 0.38, 4, t, 16, &step);
    ck_assert_int_eq(n, 4);
    ck_assert_double_eq_tol(t[3], 0.38, 1e-15);
    ck_assert_double_eq_tol(step, 0.02, 1e-15); /* linear: the labels' step */
    char l0[24], l1[24];
    chart_tick_label(t[2], step, l0, sizeof(l0));
    chart_tick_label(t[3], step, l1, sizeof(l1));
    ck_assert_str_eq(l0, "0.36");
    ck_assert_str_eq(l1, "0.38");
    n = chart_log_ticks(0.05, 0.7, 4, t, 16, &step);
    ck_assert_double_eq(step, 0); /* log ticks: each labelled by itself */
    ck_assert_int_eq(chart_log_ticks(-1, 1, 4, t, 16, &step), 0);
}
END_TEST

START_TEST(test_tick_labels)
{
    struct { double v, step; const char *want; } c[] = {
        {0.3, 0.1, "0.3"},     {0.35, 0.05, "0.35"},   {0.4, 0.05, "0.40"},  {1, 0.5, "1.0"},
        {0, 0.1, "0"},         {-0.5, 0.5, "-0.5"},    {250, 50, "250"},     {1500, 500, "1.5k"},
        {2000, 500, "2k"},     {12000, 2000, "12k"},   {1200, 400, "1.2k"},  {2.5e6, 5e5, "2.5M"},
        {5e-4, 1e-4, "5e-4"},  {1.5e-4, 5e-5, "1.5e-4"}, {0.001, 0.001, "0.001"}, {1e-6, 1e-6, "1e-6"},
        {10, 10, "10"},        {0.05, 0.05, "0.05"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char buf[32];
        chart_tick_label(c[i].v, c[i].step, buf, sizeof(buf));
        ck_assert_msg(!strcmp(buf, c[i].want), "label(%g, %g) = '%s', want '%s'", c[i].v, c[i].step, buf,
                      c[i].want);
    }
}
END_TEST

/* ---- goldens: chart, heatmap, histogram --------------------------------- */

static void draw_chart_panel(Grid *g, const ChartSeries *s, int n, double smoothing, int log_y, const DrawOpts *o) {
    ChartSpec c = {s, n, smoothing, log_y, 0, 1200, 1, NULL};
    grid_box(g, grect(0, 0, g->w, g->h), style_pick(o, GC_BLUE, 0, 0), log_y ? "Loss (log)" : "Loss",
             style_pick(o, GC_DEFAULT, GA_BOLD, GA_BOLD), o->unicode);
    chart_draw(g, grid_inner(grect(0, 0, g->w, g->h)), &c, o);
}

START_TEST(test_golden_chart)
{
    Fixture *f = malloc(sizeof(Fixture));
    fixture_init(f);
    Grid g = new_grid(56, 14);
    /* two series, smoothed (raw faint behind), a NaN in the lower loss */
    ChartSeries two[2] = {f->loss[0], f->loss[2]};
    draw_chart_panel(&g, two, 2, 0.6, 0, &UNI);
    check_golden("chart_smooth_unicode", &g);
    draw_chart_panel(&g, f->loss, 3, 0.6, 1, &UNI);
    check_golden("chart_log_unicode", &g);
    draw_chart_panel(&g, two, 2, 0.6, 0, &ASC);
    check_golden("chart_smooth_ascii", &g);
    draw_chart_panel(&g, f->loss, 3, 0, 1, &ASC);
    check_golden("chart_log_raw_ascii", &g);
    /* nothing finite yet */
    double nx[2] = {0, 10}, ny[2] = {NAN, INFINITY};
    ChartSeries empty = {"lower", nx, ny, 2, GC_CYAN, 0, '*'};
    grid_clear(&g, grect(0, 0, g.w, g.h), gstyle(0, 0, 0));
    draw_chart_panel(&g, &empty, 1, 0.6, 0, &UNI);
    char *t = grid_dump_text(&g);
    ck_assert_msg(strstr(t, "no data yet") != NULL, "%s", t);
    free(t);
    /* data, but nothing a log axis can show */
    double zy[2] = {0, -1};
    ChartSeries zero = {"lower", nx, zy, 2, GC_CYAN, 0, '*'};
    draw_chart_panel(&g, &zero, 1, 0.6, 1, &UNI);
    t = grid_dump_text(&g);
    ck_assert_msg(strstr(t, "nothing above 0 for a log scale") != NULL, "%s", t);
    free(t);
    grid_free(&g);
    free(f);
}
END_TEST

START_TEST(test_golden_heatmap)
{
    Fixture *f = malloc(sizeof(Fixture));
    fixture_init(f);
    Grid g = new_grid(40, 12);
    HeatmapSpec hs = {f->name_ptr, f->sv, N_ROWS, RANK, 5};
    grid_box(&g, grect(0, 0, 40, 12), gstyle(GC_BLUE, 0, 0), "Singular values", gstyle(0, 0, GA_BOLD), 1);
    heatmap_draw(&g, grid_inner(grect(0, 0, 40, 12)), &hs, &UNI);
    check_golden("heatmap_unicode", &g);
    grid_box(&g, grect(0, 0, 40, 12), gstyle(GC_BLUE, 0, 0), "Singular values", gstyle(0, 0, GA_BOLD), 0);
    heatmap_draw(&g, grid_inner(grect(0, 0, 40, 12)), &hs, &ASC_MONO);
    check_golden("heatmap_ascii_mono", &g);
    grid_free(&g);

    ck_assert_int_eq(heatmap_level(0, 1, 5), 0);
    ck_assert_int_eq(heatmap_level(NAN, 1, 5), 0);
    ck_assert_int_eq(heatmap_level(0.01, 1, 5), 1);
    ck_assert_int_eq(heatmap_level(0.25, 1, 5), 1);
    ck_assert_int_eq(heatmap_level(0.26, 1, 5), 2);
    ck_assert_int_eq(heatmap_level(0.75, 1, 5), 3);
    ck_assert_int_eq(heatmap_level(1, 1, 5), 4);
    ck_assert_int_eq(heatmap_level(3, 1, 10), 9);
    free(f);
}
END_TEST

START_TEST(test_golden_histogram)
{
    Fixture *f = malloc(sizeof(Fixture));
    fixture_init(f);
    Grid g = new_grid(36, 8);
    /* all 24 x 8 values, so the bars have some height to them */
    HistogramSpec hs = {f->sv, N_ROWS * RANK, 0, NAN, NAN, GC_CYAN, 0};
    grid_box(&g, grect(0, 0, 36, 8), gstyle(GC_BLUE, 0, 0), "all singular values", gstyle(0, 0, GA_BOLD), 1);
    histogram_draw(&g, grid_inner(grect(0, 0, 36, 8)), &hs, &UNI);
    check_golden("histogram_unicode", &g);
    grid_box(&g, grect(0, 0, 36, 8), gstyle(GC_BLUE, 0, 0), "all singular values", gstyle(0, 0, GA_BOLD), 0);
    histogram_draw(&g, grid_inner(grect(0, 0, 36, 8)), &hs, &ASC);
    check_golden("histogram_ascii", &g);
    /* by index: the 8 values of row 3, whose last index is missing */
    HistogramSpec bi = {f->sv + 3 * RANK, RANK, 0, NAN, NAN, GC_CYAN, 1};
    grid_box(&g, grect(0, 0, 36, 8), gstyle(GC_BLUE, 0, 0), "L1.value by index", gstyle(0, 0, GA_BOLD), 1);
    histogram_draw(&g, grid_inner(grect(0, 0, 36, 8)), &bi, &UNI);
    check_golden("histogram_by_index_unicode", &g);
    grid_free(&g);

    double v[6] = {0, 0.5, 1, 1, 2, NAN};
    int counts[4];
    ck_assert_int_eq(histogram_count(v, 6, 0, 2, 4, counts), 5);
    ck_assert_int_eq(counts[0], 1);
    ck_assert_int_eq(counts[1], 1);
    ck_assert_int_eq(counts[2], 2);
    ck_assert_int_eq(counts[3], 1); /* 2 == hi: the last bin */
    ck_assert_uint_eq(histogram_glyph(0, 1), ' ');
    ck_assert_uint_eq(histogram_glyph(1, 1), 0x2581);
    ck_assert_uint_eq(histogram_glyph(8, 1), 0x2588);
    ck_assert_uint_eq(histogram_glyph(8, 0), '#');
    free(f);
}
END_TEST

/* ---- form --------------------------------------------------------------- */

static void expect_invalid(const Form *f, const char *name, const char *text, const char *want) {
    int i = form_index(f, name);
    ck_assert_msg(i >= 0, "no field %s", name);
    char err[256] = "";
    ck_assert_msg(form_validate(&f->fields[i], text, err, sizeof(err)) == -1, "%s='%s' accepted", name, text);
    ck_assert_msg(!strcmp(err, want), "%s='%s': '%s', want '%s'", name, text, err, want);
}

static void expect_valid(const Form *f, const char *name, const char *text) {
    char err[256] = "";
    int i = form_index(f, name);
    ck_assert_msg(i >= 0 && form_validate(&f->fields[i], text, err, sizeof(err)) == 0, "%s='%s': %s", name, text,
                  err);
}

START_TEST(test_form_validation)
{
    Form *f = malloc(sizeof(Form));
    int n;
    const FieldSpec *fs = form_train_fields(&n);
    char err[256];
    ck_assert_msg(form_init(f, fs, n, err, sizeof(err)) == 0, "%s", err);
    expect_invalid(f, "rank", "0", "rank must be between 1 and 1024");
    expect_invalid(f, "rank", "2000", "rank must be between 1 and 1024");
    expect_invalid(f, "rank", "abc", "rank: expected a whole number, got 'abc'");
    expect_invalid(f, "rank", "8.5", "rank: expected a whole number, got '8.5'");
    expect_invalid(f, "rank", "", "rank is required");
    expect_invalid(f, "lower-lr", "0", "lower-lr must be greater than 0 and less than 10");
    expect_invalid(f, "lower-lr", "fast", "lower-lr: expected a number, got 'fast'");
    expect_invalid(f, "lower-lr", "1e999", "lower-lr: '1e999' is out of range");
    expect_invalid(f, "lower-lr", "nan", "lower-lr: 'nan' is out of range");
    expect_invalid(f, "split-ratio", "1", "split-ratio must be greater than 0 and less than 1");
    expect_invalid(f, "alpha", "-1", "alpha must be greater than 0");
    expect_invalid(f, "warmup-ratio", "1", "warmup-ratio must be at least 0 and less than 1");
    expect_invalid(f, "gamma1", "-0.1", "gamma1 must be at least 0");
    expect_invalid(f, "method", "qlora", "method must be one of lora, dora, svd, adalora, bilora, bidora");
    expect_invalid(f, "method", "LoRA", "method must be one of lora, dora, svd, adalora, bilora, bidora");
    expect_invalid(f, "targets", "query,foo",
                   "targets: 'foo' is not one of query, key, value, attention_output, intermediate, output");
    expect_invalid(f, "targets", "query,,value", "targets: empty item; separate items with single commas");
    expect_invalid(f, "targets", "query,", "targets: empty item; separate items with single commas");
    expect_invalid(f, "model", "  ", "model is required");
    expect_valid(f, "rank", " 16 ");
    expect_valid(f, "rank", "1024");
    expect_valid(f, "lower-lr", "3e-4");
    expect_valid(f, "split-ratio", "0.5");
    expect_valid(f, "targets", "query,key,value");
    expect_valid(f, "hypergrad", "neumann");
    expect_valid(f, "data", "");
    /* a default that fails its own field is caught at init */
    FieldSpec bad = {"rank", "x", FIELD_INT, "0", 1, 8, FIELD_HAS_MIN | FIELD_HAS_MAX, NULL, ""};
    ck_assert_int_eq(form_init(f, &bad, 1, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "form: field rank: default '0' is invalid: rank must be between 1 and 8");
    free(f);
}
END_TEST

START_TEST(test_form_editing)
{
    Form *f = malloc(sizeof(Form));
    int n;
    char err[256];
    const FieldSpec *fs = form_train_fields(&n);
    ck_assert_int_eq(form_init(f, fs, n, err, sizeof(err)), 0);
    ck_assert_str_eq(form_get(f, "rank"), "8");
    ck_assert_ptr_null(form_get(f, "no-such"));
    /* set: validated, stored trimmed, says whether it changed */
    ck_assert_int_eq(form_set(f, "rank", "16 "), 1);
    ck_assert_str_eq(form_get(f, "rank"), "16");
    ck_assert_int_eq(form_set(f, "rank", "16"), 0);
    ck_assert_int_eq(form_set(f, "rank", "0"), -1);
    ck_assert_str_eq(f->message, "rank must be between 1 and 1024");
    ck_assert_str_eq(form_get(f, "rank"), "16");
    /* typing: insert, backspace over a multi-byte codepoint, cursor moves */
    f->selected = form_index(f, "data");
    ck_assert_int_eq(form_edit_begin(f), 0);
    form_edit_insert(f, "d\u00E9j\u00E0");
    ck_assert_str_eq(f->edit, "d\u00E9j\u00E0");
    form_edit_backspace(f);
    ck_assert_str_eq(f->edit, "d\u00E9j");
    form_edit_left(f);
    form_edit_left(f);
    ck_assert_int_eq(f->cursor, 1);
    form_edit_insert(f, "X");
    ck_assert_str_eq(f->edit, "dX\u00E9j");
    form_edit_right(f);
    ck_assert_int_eq(f->cursor, 4);
    ck_assert_int_eq(form_edit_commit(f), 1);
    ck_assert_str_eq(form_get(f, "data"), "dX\u00E9j");
    ck_assert_int_eq(f->editing, 0);
    /* control bytes in pasted text are dropped */
    f->selected = form_index(f, "rank");
    form_edit_begin(f);
    form_edit_insert(f, "\n2\x1b");
    ck_assert_str_eq(f->edit, "162");
    form_edit_cancel(f);
    /* a refused commit keeps the edit open with the reason */
    f->selected = form_index(f, "batch-size");
    form_edit_begin(f);
    form_edit_backspace(f);
    form_edit_backspace(f);
    form_edit_backspace(f); /* at the start: nothing happens */
    form_edit_insert(f, "0");
    ck_assert_int_eq(form_edit_commit(f), -1);
    ck_assert_int_eq(f->editing, 1);
    ck_assert_str_eq(f->message, "batch-size must be between 1 and 4096");
    form_edit_cancel(f);
    ck_assert_str_eq(form_get(f, "batch-size"), "32");
    /* choices cycle around */
    f->selected = form_index(f, "hypergrad");
    ck_assert_int_eq(form_cycle(f, 1), 1);
    ck_assert_str_eq(form_get(f, "hypergrad"), "neumann");
    ck_assert_int_eq(form_cycle(f, 1), 1);
    ck_assert_str_eq(form_get(f, "hypergrad"), "first-order");
    ck_assert_int_eq(form_cycle(f, -1), 1);
    ck_assert_str_eq(form_get(f, "hypergrad"), "neumann");
    /* while a run goes: cold fields refuse, hot ones apply */
    f->running = 1;
    ck_assert_int_eq(form_set(f, "rank", "32"), -1);
    ck_assert_str_eq(f->message, "rank needs a new run (it cannot change while this run goes)");
    f->selected = form_index(f, "method");
    ck_assert_int_eq(form_edit_begin(f), -1);
    ck_assert_int_eq(form_cycle(f, 1), -1);
    ck_assert_str_eq(form_get(f, "method"), "lora");
    ck_assert_int_eq(form_set(f, "lower-lr", "3e-4"), 1);
    ck_assert_str_eq(f->message, "lower-lr = 3e-4, applied at the next step");
    /* the buffer never splits a codepoint */
    f->selected = form_index(f, "data");
    ck_assert_int_eq(form_edit_begin(f), -1); /* data is cold */
    f->running = 0;
    ck_assert_int_eq(form_edit_begin(f), 0);
    for (int i = 0; i < 100; i++) form_edit_insert(f, "\u65E5");
    size_t len = strlen(f->edit);
    ck_assert_int_ge((int)len, FORM_VALUE_LEN - 3);
    ck_assert_int_lt((int)len, FORM_VALUE_LEN);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += (size_t)utf8_decode(f->edit + i, len - i, &cp);
        ck_assert_uint_ne(cp, 0xFFFD);
    }
    free(f);
}
END_TEST

START_TEST(test_golden_form)
{
    Form *f = malloc(sizeof(Form));
    int n;
    char err[256];
    const FieldSpec *fs = form_train_fields(&n);
    ck_assert_int_eq(form_init(f, fs, n, err, sizeof(err)), 0);
    form_set(f, "model", "roberta-base");
    form_set(f, "method", "bilora");
    /* a run goes; the user tries rank (cold) and then types a bad rate */
    f->running = 1;
    form_set(f, "lower-lr", "3e-4");
    f->selected = form_index(f, "upper-lr");
    form_edit_begin(f);
    form_edit_backspace(f);
    form_edit_backspace(f);
    form_edit_insert(f, "12");
    ck_assert_int_eq(form_edit_commit(f), -1);
    Grid g = new_grid(80, 18);
    form_draw(f, &g, grect(0, 0, 80, 18), &UNI);
    check_golden("form_error_unicode", &g);
    form_edit_cancel(f);
    f->selected = form_index(f, "rank");
    form_edit_begin(f); /* refused: needs a new run */
    form_draw(f, &g, grect(0, 0, 80, 18), &ASC_MONO);
    check_golden("form_cold_ascii_mono", &g);
    grid_free(&g);
    free(f);
}
END_TEST

/* ---- panels ------------------------------------------------------------- */

static int rect_in(Rect r, int w, int h) { return r.x >= 0 && r.y >= 0 && r.x + r.w <= w && r.y + r.h <= h; }
static int rect_overlap(Rect a, Rect b) {
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

START_TEST(test_layout)
{
    DashLayout l;
    dash_layout(79, 24, &l);
    ck_assert_int_eq(l.too_small, 1);
    dash_layout(80, 23, &l);
    ck_assert_int_eq(l.too_small, 1);
    dash_layout(80, 24, &l);
    ck_assert_int_eq(l.too_small, 0);
    /* at 80x24: charts 10 rows (5 plot rows), spectrum 6, events 5 */
    ck_assert_int_eq(l.loss.h, 10);
    ck_assert_int_eq(l.heat.h, 6);
    ck_assert_int_eq(l.log.h, 5);
    ck_assert_int_eq(l.status.y, 23);
    for (int w = 80; w <= 240; w += 7)
        for (int h = 24; h <= 80; h += 5) {
            dash_layout(w, h, &l);
            Rect r[8] = {l.stats, l.progress, l.loss, l.metric, l.heat, l.hist, l.log, l.status};
            int area = 0;
            for (int i = 0; i < 8; i++) {
                ck_assert_msg(rect_in(r[i], w, h) && r[i].w > 0 && r[i].h > 0, "%dx%d: rect %d outside", w, h, i);
                area += r[i].w * r[i].h;
                for (int j = 0; j < i; j++) ck_assert_msg(!rect_overlap(r[i], r[j]), "%dx%d: %d overlaps %d", w, h, i, j);
            }
            ck_assert_msg(area == w * h, "%dx%d: panels cover %d of %d cells", w, h, area, w * h);
            ck_assert_int_ge(l.loss.h, 10);
        }
}
END_TEST

START_TEST(test_formats)
{
    char b[32];
    dash_format_eta(274, b, sizeof(b));
    ck_assert_str_eq(b, "4m34s");
    dash_format_eta(3900, b, sizeof(b));
    ck_assert_str_eq(b, "1h05m");
    dash_format_eta(-1, b, sizeof(b));
    ck_assert_str_eq(b, "--");
    dash_format_eta(NAN, b, sizeof(b));
    ck_assert_str_eq(b, "--");
    dash_format_count(1234567, b, sizeof(b));
    ck_assert_str_eq(b, "1,234,567");
    dash_format_count(999, b, sizeof(b));
    ck_assert_str_eq(b, "999");
    dash_format_count(-1000, b, sizeof(b));
    ck_assert_str_eq(b, "-1,000");
    /* progress bar: 10 cells at 45% = 4 full cells and a half block */
    Grid g = new_grid(10, 1);
    dash_bar(&g, 0, 0, 10, 0.45, GC_GREEN, &UNI);
    char *t = grid_dump_text(&g);
    ck_assert_str_eq(t, "\u2588\u2588\u2588\u2588\u258C\u2591\u2591\u2591\u2591\u2591\n");
    free(t);
    dash_bar(&g, 0, 0, 10, 0.45, GC_GREEN, &ASC);
    t = grid_dump_text(&g);
    ck_assert_str_eq(t, "####......\n");
    free(t);
    grid_free(&g);
}
END_TEST

static void golden_dash(const char *name, int w, int h, const DashView *v, const DrawOpts *o) {
    Grid g = new_grid(w, h);
    dash_draw(&g, v, o);
    check_golden(name, &g);
    grid_free(&g);
}

START_TEST(test_golden_dashboard)
{
    Fixture *f = malloc(sizeof(Fixture));
    fixture_init(f);
    DashView v = fixture_view(f);
    golden_dash("dash_80x24_unicode", 80, 24, &v, &UNI);
    golden_dash("dash_80x24_ascii", 80, 24, &v, &ASC);
    golden_dash("dash_120x40_unicode", 120, 40, &v, &UNI);
    golden_dash("dash_120x40_ascii", 120, 40, &v, &ASC);
    golden_dash("dash_80x24_mono", 80, 24, &v, &MONO);

    /* paused, log scale, a question in the status line */
    DashView p = v;
    p.runs[0].state = "paused";
    p.log_y = 1;
    p.prompt = "Discard the unsaved run and quit?  y: quit  w: save first  other keys: stay";
    golden_dash("dash_80x24_paused_log", 80, 24, &p, &UNI);

    /* compare mode: lora vs bilora overlaid */
    DashView c = v;
    c.title = "roberta-base \u00B7 RTE";
    DashRun a = {"lora", "running", 1200, 3000, 1.93, 1612.0, 70.0, GC_BLUE};
    DashRun b = {"bilora", "running", 1200, 3000, 1.93, 412.3, 274.0, GC_MAGENTA};
    c.runs[0] = a;
    c.runs[1] = b;
    c.n_runs = 2;
    c.loss = f->cmp_loss;
    c.n_loss = 4;
    c.metric = f->cmp_metric;
    c.n_metric = 2;
    golden_dash("dash_compare_80x24_unicode", 80, 24, &c, &UNI);
    golden_dash("dash_compare_120x40_unicode", 120, 40, &c, &UNI);

    /* help on top; too small */
    DashView hv = v;
    hv.show_help = 1;
    golden_dash("dash_help_80x24", 80, 24, &hv, &UNI);
    golden_dash("dash_too_small_60x20", 60, 20, &v, &UNI);

    /* a run that has not started: no data anywhere */
    DashView e;
    memset(&e, 0, sizeof(e));
    e.title = "roberta-base \u00B7 RTE \u00B7 lora";
    DashRun s0 = {"lora", "running", 0, 3000, 0, -1, -1, GC_GREEN};
    e.runs[0] = s0;
    e.n_runs = 1;
    e.device = "cpu";
    e.mem_bytes = -1;
    e.metric_name = "accuracy";
    e.smoothing = 0.6;
    golden_dash("dash_empty_80x24", 80, 24, &e, &UNI);
    free(f);
}
END_TEST

/* The last row of t (a grid_dump_text), into row. */
static void last_row(const char *t, char *row, size_t cap) {
    size_t n = strlen(t);
    if (n && t[n - 1] == '\n') n--;
    const char *start = t + n;
    while (start > t && start[-1] != '\n') start--;
    snprintf(row, cap, "%.*s", (int)(t + n - start), start);
}

/* A notice ("saved session ...") takes the status line's right end: the
 * always-shown keys stay, optional ones give way, and a notice too long
 * for the line is cut rather than overwriting the keys. */
START_TEST(test_status_notice)
{
    Fixture *f = malloc(sizeof(Fixture));
    fixture_init(f);
    DashView v = fixture_view(f);
    Grid g = new_grid(80, 24);
    char row[1024];

    dash_draw(&g, &v, &UNI);
    char *t = grid_dump_text(&g);
    last_row(t, row, sizeof(row));
    free(t);
    ck_assert_msg(strstr(row, "w save") && strstr(row, "q quit"), "keys: %s", row);

    v.notice = "saved session 's1' at step 1,200";
    dash_draw(&g, &v, &UNI);
    t = grid_dump_text(&g);
    last_row(t, row, sizeof(row));
    free(t);
    char *at = strstr(row, v.notice);
    ck_assert_msg(at, "no notice: %s", row);
    ck_assert_msg(strstr(row, "q quit") && strstr(row, "q quit") < at, "quit must stay, before the notice: %s", row);
    /* it ends one column before the edge: only blanks follow */
    ck_assert_msg(strspn(at + strlen(v.notice), " ") == strlen(at + strlen(v.notice)), "not at the right end: '%s'", at);
    ck_assert_int_eq(utf8_width(row) - utf8_width(at), 80 - 1 - (int)strlen(v.notice));
    int bold_green = 0;
    for (int x = 0; x < 80; x++) {
        const Cell *c = grid_cat(&g, x, 23);
        if (c->cp == 's' && x > 40) {
            bold_green = c->st.fg == GC_GREEN && (c->st.attr & GA_BOLD);
            break;
        }
    }
    ck_assert_msg(bold_green, "the notice is not bold green");

    /* longer than the room left after the always-shown keys: cut */
    v.notice = "saved session 'a-very-long-session-name-that-goes-on-and-on-and-on-and-on' at step 1,200";
    dash_draw(&g, &v, &UNI);
    t = grid_dump_text(&g);
    last_row(t, row, sizeof(row));
    free(t);
    ck_assert_msg(strstr(row, "q quit"), "quit was overwritten: %s", row);
    ck_assert_msg(strstr(row, "saved session"), "no notice: %s", row);
    grid_free(&g);
    free(f);
}
END_TEST

/* The grid never holds half a wide glyph: every GRID_CONT follows a wide
 * codepoint, and every wide codepoint has its GRID_CONT. */
static void check_grid_whole(const Grid *g) {
    for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++) {
            const Cell *c = grid_cat(g, x, y);
            if (c->cp == GRID_CONT) ck_assert_msg(x > 0 && cp_width(grid_cat(g, x - 1, y)->cp) == 2, "orphan half at %d,%d", x, y);
            else if (cp_width(c->cp) == 2)
                ck_assert_msg(x + 1 < g->w && grid_cat(g, x + 1, y)->cp == GRID_CONT, "wide glyph cut at %d,%d", x, y);
        }
}

/* Every panel at every size, from 1x1 up: nothing is drawn outside its
 * rectangle's grid, nothing crashes (run under ASan in development), and
 * no wide glyph is split. */
START_TEST(test_draw_any_size)
{
    Fixture *f = malloc(sizeof(Fixture));
    fixture_init(f);
    DashView v = fixture_view(f);
    v.title = "\u65E5\u672C\u8A9E \u00B7 RTE"; /* wide glyphs in the title */
    Form *form = malloc(sizeof(Form));
    int n;
    char err[256];
    const FieldSpec *fs = form_train_fields(&n);
    ck_assert_int_eq(form_init(form, fs, n, err, sizeof(err)), 0);
    form->selected = 20;
    const DrawOpts *modes[4] = {&UNI, &ASC, &MONO, &ASC_MONO};
    for (int w = 1; w <= 130; w += (w < 30 ? 1 : 9))
        for (int h = 1; h <= 45; h += (h < 12 ? 1 : 5)) {
            Grid g = new_grid(w, h);
            const DrawOpts *o = modes[(w + h) % 4];
            v.show_help = (w + h) % 3 == 0;
            dash_draw(&g, &v, o);
            check_grid_whole(&g);
            Rect r = grect(0, 0, w, h);
            ChartSpec cs = {f->loss, 3, 0.6, (w + h) % 2, NAN, NAN, 1, NULL};
            chart_draw(&g, r, &cs, o);
            HeatmapSpec hs = {f->name_ptr, f->sv, N_ROWS, RANK, (w * h) % N_ROWS};
            heatmap_draw(&g, r, &hs, o);
            HistogramSpec his = {f->sv, N_ROWS * RANK, 0, NAN, NAN, GC_CYAN, w % 2};
            histogram_draw(&g, r, &his, o);
            form->editing = h % 2;
            form_draw(form, &g, r, o);
            grid_box(&g, r, gstyle(0, 0, 0), "\u65E5\u672C\u8A9E title", gstyle(0, 0, 0), o->unicode);
            check_grid_whole(&g);
            grid_free(&g);
        }
    free(form);
    free(f);
}
END_TEST

static Suite *ui_draw_suite(void) {
    Suite *s = suite_create("ui_draw");
    TCase *tc = tcase_create("grid");
    tcase_add_test(tc, test_utf8_width);
    tcase_add_test(tc, test_grid_text_clipping);
    tcase_add_test(tc, test_grid_box_and_styles);
    tcase_add_test(tc, test_braille_dots);
    suite_add_tcase(s, tc);
    tc = tcase_create("chart");
    tcase_add_test(tc, test_ema_debiasing);
    tcase_add_test(tc, test_ticks);
    tcase_add_test(tc, test_tick_labels);
    tcase_add_test(tc, test_golden_chart);
    tcase_add_test(tc, test_golden_heatmap);
    tcase_add_test(tc, test_golden_histogram);
    suite_add_tcase(s, tc);
    tc = tcase_create("form");
    tcase_add_test(tc, test_form_validation);
    tcase_add_test(tc, test_form_editing);
    tcase_add_test(tc, test_golden_form);
    suite_add_tcase(s, tc);
    tc = tcase_create("panels");
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_formats);
    tcase_add_test(tc, test_golden_dashboard);
    tcase_add_test(tc, test_status_notice);
    tcase_add_test(tc, test_draw_any_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(ui_draw_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
