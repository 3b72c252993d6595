/* Tests for the GLUE metrics (datasets/metrics.c).
 *
 * Expected values marked "sklearn 1.9.1" / "scipy 1.17.1" were computed with
 * sklearn.metrics (accuracy_score, f1_score, matthews_corrcoef) and
 * scipy.stats (pearsonr, spearmanr) on exactly the arrays below (as float32,
 * then float64), in a throwaway venv outside the project. The small cases
 * were also worked by hand, as the comments show. */
#include <check.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/metrics.h"

#define TOL 1e-12

/* 12 binary pairs: tp = 5, fp = 2, fn = 2, tn = 3. */
static const float L12[] = {1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0};
static const float P12[] = {1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1};

/* 30 binary pairs drawn with numpy (seed 7, 75% agreement). */
static const float Y30[] = {1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0,
                            1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0};
static const float P30[] = {1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0,
                            1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0};

START_TEST(test_accuracy)
{
    /* 8 of 12 agree (by hand); sklearn: 0.6666666666666666 */
    ck_assert_double_eq_tol(metric_accuracy(P12, L12, 12), 8.0 / 12.0, TOL);
    /* sklearn 1.9.1: 0.7333333333333333 */
    ck_assert_double_eq_tol(metric_accuracy(P30, Y30, 30), 0.7333333333333333, TOL);
    /* classes given as floats a rounding error away from an integer */
    const float p[] = {0.9999999f, 2.0000002f, 1.0f};
    const float l[] = {1.0f, 2.0f, 0.0f};
    ck_assert_double_eq_tol(metric_accuracy(p, l, 3), 2.0 / 3.0, TOL);
    ck_assert(isnan(metric_accuracy(p, l, 0)));
}
END_TEST

START_TEST(test_f1)
{
    /* 2tp / (2tp + fp + fn) = 10 / 14 (by hand); sklearn: 0.7142857142857143 */
    ck_assert_double_eq_tol(metric_f1(P12, L12, 12), 10.0 / 14.0, TOL);
    /* sklearn 1.9.1: 0.7647058823529411 */
    ck_assert_double_eq_tol(metric_f1(P30, Y30, 30), 0.7647058823529411, TOL);

    /* no positive labels, some positive predictions: tp = 0, so F1 = 0
     * (sklearn: 0.0) */
    const float l0[] = {0, 0, 0, 0}, p_some[] = {0, 1, 0, 1};
    ck_assert_double_eq(metric_f1(p_some, l0, 4), 0.0);
    /* no positives anywhere: precision and recall are 0/0; sklearn's
     * zero_division default makes F1 0.0, and so do we */
    const float p0[] = {0, 0, 0, 0};
    ck_assert_double_eq(metric_f1(p0, l0, 4), 0.0);
    /* positives exist but none predicted: recall 0, F1 0 (sklearn: 0.0) */
    const float l_some[] = {1, 0, 1, 0};
    ck_assert_double_eq(metric_f1(p0, l_some, 4), 0.0);
    /* perfect */
    ck_assert_double_eq_tol(metric_f1(l_some, l_some, 4), 1.0, TOL);
    ck_assert(isnan(metric_f1(p0, l0, 0)));
}
END_TEST

START_TEST(test_mcc)
{
    /* (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))
     * = (15 - 4) / sqrt(7*7*5*5) = 11/35 (by hand); sklearn: 0.3142857142857143 */
    ck_assert_double_eq_tol(metric_mcc(P12, L12, 12), 11.0 / 35.0, TOL);
    /* sklearn 1.9.1: 0.4637130167514838 */
    ck_assert_double_eq_tol(metric_mcc(P30, Y30, 30), 0.4637130167514838, TOL);

    /* degenerate: a model that always answers 1 has a zero denominator;
     * sklearn returns 0.0 there (matthews_corrcoef([1,0,1,1,0],[1]*5)) */
    const float l[] = {1, 0, 1, 1, 0}, ones[] = {1, 1, 1, 1, 1};
    ck_assert_double_eq(metric_mcc(ones, l, 5), 0.0);
    /* both sides constant: sklearn 0.0 */
    ck_assert_double_eq(metric_mcc(ones, ones, 5), 0.0);
    /* perfect and perfectly wrong */
    const float inv[] = {0, 1, 0, 0, 1};
    ck_assert_double_eq_tol(metric_mcc(l, l, 5), 1.0, TOL);
    ck_assert_double_eq_tol(metric_mcc(inv, l, 5), -1.0, TOL);

    /* three classes (sklearn's multiclass form):
     * matthews_corrcoef([0,1,2,2,1,0,2,1,0,0], [0,2,2,1,1,0,2,0,0,1])
     * = 0.3939393939393939 (sklearn 1.9.1) */
    const float lm[] = {0, 1, 2, 2, 1, 0, 2, 1, 0, 0};
    const float pm[] = {0, 2, 2, 1, 1, 0, 2, 0, 0, 1};
    ck_assert_double_eq_tol(metric_mcc(pm, lm, 10), 0.3939393939393939, TOL);
    ck_assert(isnan(metric_mcc(pm, lm, 0)));
}
END_TEST

/* Scores with ties on both sides. Average ranks (scipy.stats.rankdata):
 *   x -> 2, 5, 5, 7.5, 3, 9, 5, 10, 1, 7.5
 *   y -> 2.5, 4, 6, 7, 2.5, 8.5, 5, 10, 1, 8.5 */
static const float X10[] = {0.5f, 2.0f, 2.0f, 3.5f, 1.0f, 4.25f, 2.0f, 5.0f, 0.0f, 3.5f};
static const float Y10[] = {1.0f, 1.5f, 2.5f, 3.0f, 1.0f, 4.0f, 2.0f, 4.5f, 0.25f, 4.0f};

/* STS-B-like labels (halves) and predictions (quarters), numpy seed 7. */
static const float LAB24[] = {3, 4.5, 4, 1, 1.5, 4.5, 0, 4, 4, 2.5, 1.5, 1.5,
                              1.5, 2, 2.5, 3, 5, 4, 3, 5, 1, 1, 3, 0};
static const float PRED24[] = {3.25, 4.25, 1.5, 0.5, 1.5, 4.5, 0, 3.5, 3, 1.75, 2.5, 0.75,
                               1.5, 3, 2, 3, 5, 4, 1.75, 5, 2.25, 0, 3.75, 0};

START_TEST(test_pearson)
{
    /* scipy 1.17.1: pearsonr(X10, Y10) = 0.9692425149153738 */
    ck_assert_double_eq_tol(metric_pearson(X10, Y10, 10), 0.9692425149153738, TOL);
    /* scipy 1.17.1: pearsonr(PRED24, LAB24) = 0.8631280438105253 */
    ck_assert_double_eq_tol(metric_pearson(PRED24, LAB24, 24), 0.8631280438105253, TOL);
    /* x = 1..5, y = x^3: scipy 0.9431175138077005 */
    const float a[] = {1, 2, 3, 4, 5}, b[] = {1, 8, 27, 64, 125}, nb[] = {-1, -8, -27, -64, -125};
    ck_assert_double_eq_tol(metric_pearson(a, b, 5), 0.9431175138077005, TOL);
    ck_assert_double_eq_tol(metric_pearson(a, nb, 5), -0.9431175138077005, TOL);
    /* symmetric, and invariant under an affine change of one side */
    ck_assert_double_eq_tol(metric_pearson(Y10, X10, 10), 0.9692425149153738, TOL);
    float shifted[10];
    for (int i = 0; i < 10; i++)
        shifted[i] = 2.0f * X10[i] + 1000.0f;
    ck_assert_double_eq_tol(metric_pearson(shifted, Y10, 10), 0.9692425149153738, 1e-9);
    /* constant input: scipy returns nan */
    const float c[] = {2, 2, 2, 2, 2};
    ck_assert(isnan(metric_pearson(a, c, 5)));
    ck_assert(isnan(metric_pearson(a, b, 0)));
}
END_TEST

START_TEST(test_spearman)
{
    /* scipy 1.17.1: spearmanr(X10, Y10) = 0.9752742653418253 (ties averaged;
     * equal to pearson of the rank lists in the comment above) */
    ck_assert_double_eq_tol(metric_spearman(X10, Y10, 10), 0.9752742653418253, TOL);
    /* scipy 1.17.1: spearmanr(PRED24, LAB24) = 0.8531341303212373 */
    ck_assert_double_eq_tol(metric_spearman(PRED24, LAB24, 24), 0.8531341303212373, TOL);
    /* monotone but not linear: exactly 1 / -1 */
    const float a[] = {1, 2, 3, 4, 5}, b[] = {1, 8, 27, 64, 125}, nb[] = {-1, -8, -27, -64, -125};
    ck_assert_double_eq_tol(metric_spearman(a, b, 5), 1.0, TOL);
    ck_assert_double_eq_tol(metric_spearman(a, nb, 5), -1.0, TOL);
    /* the order of the pairs does not matter */
    float xp[10], yp[10];
    static const int perm[10] = {7, 2, 9, 0, 4, 1, 8, 3, 6, 5};
    for (int i = 0; i < 10; i++) {
        xp[i] = X10[perm[i]];
        yp[i] = Y10[perm[i]];
    }
    ck_assert_double_eq_tol(metric_spearman(xp, yp, 10), 0.9752742653418253, TOL);
    /* constant (all tied) input: scipy returns nan; a NaN input too */
    const float c[] = {2, 2, 2, 2, 2};
    ck_assert(isnan(metric_spearman(a, c, 5)));
    const float withnan[] = {1, NAN, 3, 4, 5};
    ck_assert(isnan(metric_spearman(withnan, b, 5)));
    ck_assert(isnan(metric_spearman(a, b, 0)));
}
END_TEST

static void expect_set(const MetricSet *m, int n, const char *n0, const char *n1)
{
    ck_assert_int_eq(m->n, n);
    ck_assert_int_eq(m->primary, 0);
    ck_assert_str_eq(m->name[0], n0);
    if (n > 1)
        ck_assert_str_eq(m->name[1], n1);
}

START_TEST(test_glue_metrics)
{
    MetricSet m;

    glue_metrics(glue_task_info("CoLA"), P12, L12, 12, &m);
    expect_set(&m, 2, "mcc", "accuracy");
    ck_assert_double_eq_tol(m.value[0], 11.0 / 35.0, TOL);
    ck_assert_double_eq_tol(m.value[1], 8.0 / 12.0, TOL);

    glue_metrics(glue_task_info("MRPC"), P30, Y30, 30, &m);
    expect_set(&m, 2, "f1", "accuracy");
    ck_assert_double_eq_tol(m.value[0], 0.7647058823529411, TOL);
    ck_assert_double_eq_tol(m.value[1], 0.7333333333333333, TOL);

    glue_metrics(glue_task_info("qqp"), P12, L12, 12, &m);
    expect_set(&m, 2, "f1", "accuracy");
    ck_assert_double_eq_tol(m.value[0], 10.0 / 14.0, TOL);

    glue_metrics(glue_task_info("STS-B"), PRED24, LAB24, 24, &m);
    expect_set(&m, 2, "pearson", "spearman");
    ck_assert_double_eq_tol(m.value[0], 0.8631280438105253, TOL);
    ck_assert_double_eq_tol(m.value[1], 0.8531341303212373, TOL);

    static const char *const acc_tasks[] = {"SST-2", "MNLI", "QNLI", "RTE", "WNLI"};
    for (int i = 0; i < 5; i++) {
        glue_metrics(glue_task_info(acc_tasks[i]), P12, L12, 12, &m);
        expect_set(&m, 1, "accuracy", NULL);
        ck_assert_double_eq_tol(m.value[0], 8.0 / 12.0, TOL);
    }

    /* MNLI: three classes, accuracy only (one call per dev split) */
    const float lm[] = {0, 1, 2, 2, 1, 0, 2, 1, 0, 0};
    const float pm[] = {0, 2, 2, 1, 1, 0, 2, 0, 0, 1};
    glue_metrics(glue_task_info("mnli-mm"), pm, lm, 10, &m);
    expect_set(&m, 1, "accuracy", NULL);
    ck_assert_double_eq_tol(m.value[0], 0.6, TOL);

    /* a caller's copy of the task info works the same */
    GlueTaskInfo copy = *glue_task_info("CoLA");
    glue_metrics(&copy, P12, L12, 12, &m);
    expect_set(&m, 2, "mcc", "accuracy");

    /* no task: accuracy, which is meaningful for any classifier */
    glue_metrics(NULL, P12, L12, 12, &m);
    expect_set(&m, 1, "accuracy", NULL);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *su = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_accuracy);
    tcase_add_test(tc, test_f1);
    tcase_add_test(tc, test_mcc);
    tcase_add_test(tc, test_pearson);
    tcase_add_test(tc, test_spearman);
    tcase_add_test(tc, test_glue_metrics);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
