/* The command line, run as a user runs it: the real binary (./bilora, or
 * BILORA_BIN) in a child process, its stdout and stderr read back.
 *
 * bilora resume with several live settings applies every one of them (each
 * setting's name once pointed at one reused buffer, so two settings mixed
 * up or one was lost); contradictory flags and a complete session are
 * answered before anything loads; bad stdin and flags are named; every
 * snapshot is reported. */
#include "engine/train.h"
#include "sessions/session.h"
#include "tests/fixtures.h"

#include <check.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bilora_bin(void) {
    const char *b = getenv("BILORA_BIN");
    return b && *b ? b : "./bilora";
}

/* Runs the binary with argv[1..], BILORA_SESSIONS=root and input (may be
 * NULL) on stdin; out gets stdout and stderr together. Returns the exit
 * status. */
static int interrupt_after_ms; /* > 0: send SIGINT to the run this long after it starts */

static int run_cli_in(const char *root, char *const *args, const char *input, char *out, size_t cap) {
    ck_assert_msg(access(bilora_bin(), X_OK) == 0, "%s is not built (make bilora; BILORA_BIN overrides)",
                  bilora_bin());
    int p[2], in[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(pipe(in), 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[1]);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        setenv("BILORA_SESSIONS", root, 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        char *argv[32] = {(char *)bilora_bin()};
        for (int i = 0; args[i] && i < 30; i++) argv[i + 1] = args[i];
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    close(in[0]);
    if (input) ck_assert_int_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);
    if (interrupt_after_ms > 0) {
        struct timespec ts = {interrupt_after_ms / 1000, (long)(interrupt_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGINT);
    }
    size_t n = 0;
    ssize_t k;
    while ((k = read(p[0], out + n, cap - 1 - n)) > 0) n += (size_t)k;
    out[n] = 0;
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_cli(const char *root, char *const *args, char *out, size_t cap) {
    return run_cli_in(root, args, NULL, out, cap);
}

/* A lora session "s" of 12 steps saved after 5, evaluating every 100. */
static void saved_session(char *dir, char *root, long steps_done) {
    char err[1024];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    snprintf(root, 300, "%s/sessions", dir);
    TrainConfig c;
    train_config_defaults(&c);
    snprintf(c.model, sizeof(c.model), "%s/model", dir);
    snprintf(c.task, sizeof(c.task), "SST-2");
    snprintf(c.data, sizeof(c.data), "%s/SST-2", dir);
    c.rank = 2;
    c.batch_size = 8;
    c.steps = 12;
    c.eval_every = 100;
    Run *r;
    ck_assert_msg(run_create(&r, &c, NULL, err, sizeof(err)) == 0, "%s", err);
    for (long i = 0; i < steps_done; i++) ck_assert_int_ge(run_step(r, err, sizeof(err)), 0);
    ck_assert_msg(session_save(root, "s", r, err, sizeof(err)) == 0, "%s", err);
    run_free(r);
}

START_TEST(resume_applies_every_setting) {
    char dir[256], root[300];
    static char out[1 << 20];
    saved_session(dir, root, 5);
    /* the order that lost the first setting, and the one that mixed them */
    const char *orders[2][4] = {{"--eval-every", "1", "--lr", "2e-3"}, {"--lr", "2e-3", "--eval-every", "1"}};
    for (int o = 0; o < 2; o++) {
        char *args[] = {"resume", "s", "--no-save", "--json", (char *)orders[o][0], (char *)orders[o][1],
                        (char *)orders[o][2], (char *)orders[o][3], NULL};
        int rc = run_cli(root, args, out, sizeof(out));
        ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
        ck_assert_msg(strstr(out, "from step 6: eval_every = 1"), "eval_every not applied:\n%s", out);
        ck_assert_msg(strstr(out, "from step 6: lower_lr = 2e-3"), "lower_lr not applied:\n%s", out);
        /* evaluated at step 6, which only --eval-every 1 does (the run's own is 100) */
        ck_assert_msg(strstr(out, "{\"event\":\"eval\",\"step\":6,"), "no evaluation at step 6:\n%s", out);
    }
    fixture_rmdir(dir);
}
END_TEST

START_TEST(resume_answers_before_loading) {
    char dir[256], root[300];
    static char out[1 << 16];
    saved_session(dir, root, 12);
    char *done[] = {"resume", "s", NULL};
    ck_assert_int_eq(run_cli(root, done, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "is complete (step 12 of 12); nothing to resume"), "%s", out);
    ck_assert_msg(!strstr(out, "task SST-2"), "the data was loaded first:\n%s", out);
    char *both[] = {"resume", "s", "--no-save", "--save-as", "t", NULL};
    ck_assert_int_eq(run_cli(root, both, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "--no-save and --save-as t contradict"), "%s", out);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(bad_input_is_named) {
    char dir[256], root[300], model[400];
    static char out[1 << 16];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    snprintf(root, sizeof(root), "%s/sessions", dir);
    snprintf(model, sizeof(model), "%s/model", dir);
    /* a pair is two texts: a third field is refused, not merged into the second */
    char *pair[] = {"tokenize", "--model", model, "--pair", NULL};
    ck_assert_int_eq(run_cli_in(root, pair, "the movie\tgood\n", out, sizeof(out)), 0);
    ck_assert_int_eq(run_cli_in(root, pair, "the movie\tgood\tbad\n", out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "stdin line 1: expected at most one tab"), "%s", out);
    char *neg[] = {"tokenize", "--model", model, "--max-seq-len", "-1", NULL};
    ck_assert_int_eq(run_cli_in(root, neg, "the movie\n", out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "--max-seq-len -1"), "%s", out);
    /* --save-every says where to save only with --session */
    char *every[] = {"train", "--model", model, "--task", "SST-2", "--save-every", "2", NULL};
    ck_assert_int_eq(run_cli(root, every, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "--save-every 2 needs --session"), "%s", out);
    /* the workbench takes task names as train does ("sst2", "e2e"): they get
     * past the flags to the terminal check; an unknown one lists the tasks */
    char *sst[] = {"tui", "--task", "sst2", NULL}, *e2e[] = {"tui", "--task", "e2e", NULL},
         *bogus[] = {"tui", "--task", "bogus", NULL};
    ck_assert_int_ne(run_cli(root, sst, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "needs a terminal"), "%s", out);
    ck_assert_int_ne(run_cli(root, e2e, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "needs a terminal"), "%s", out);
    ck_assert_int_ne(run_cli(root, bogus, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "--task must be one of") && strstr(out, "E2E"), "%s", out);
    /* --eval-generate belongs to E2E */
    char *gen[] = {"train", "--model", model, "--task", "SST-2", "--eval-generate", "4", NULL};
    ck_assert_int_eq(run_cli(root, gen, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "--eval-generate applies to the data-to-text task E2E"), "%s", out);
    fixture_rmdir(dir);
}
END_TEST

START_TEST(snapshots_are_reported) {
    char dir[256], root[300], model[400], data[400];
    static char out[1 << 20];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    snprintf(root, sizeof(root), "%s/sessions", dir);
    snprintf(model, sizeof(model), "%s/model", dir);
    snprintf(data, sizeof(data), "%s/SST-2", dir);
    char *args[] = {"train", "--model", model, "--task", "SST-2", "--data", data, "--steps", "5",
                    "--batch-size", "8", "--session", "r", "--save-every", "2", "--json", NULL};
    int rc = run_cli(root, args, out, sizeof(out));
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "step 2: saved session 'r'") && strstr(out, "step 4: saved session 'r'") &&
                  strstr(out, "step 5: saved session 'r'"), "%s", out);
    SessionSummary sm;
    char err[512];
    ck_assert_msg(session_summary(root, "r", &sm, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(sm.step, 5);
    fixture_rmdir(dir);
}
END_TEST

/* Ctrl-C on `train --session` saves at the step boundary it stops at and
 * exits 130, saying where; the session holds exactly that step. */
START_TEST(interrupt_saves_the_session) {
    char dir[256], root[300], model[400], data[400];
    static char out[1 << 16];
    fixture_tmpdir(dir);
    ck_assert_int_eq(fixture_tiny_glue(dir, 0), 0);
    snprintf(root, sizeof(root), "%s/sessions", dir);
    snprintf(model, sizeof(model), "%s/model", dir);
    snprintf(data, sizeof(data), "%s/SST-2", dir);
    char *args[] = {"train", "--model", model, "--task", "SST-2", "--data", data, "--steps", "10000000",
                    "--batch-size", "8", "--eval-every", "10000000", "--session", "c", NULL};
    interrupt_after_ms = 2500;
    int rc = run_cli(root, args, out, sizeof(out));
    interrupt_after_ms = 0;
    ck_assert_msg(rc == 130, "exit %d:\n%s", rc, out);
    const char *at = strstr(out, "interrupted at step ");
    ck_assert_msg(at && strstr(out, "saved session 'c'"), "%s", out);
    long step = atol(at + strlen("interrupted at step "));
    SessionSummary sm;
    char err[512];
    ck_assert_msg(session_summary(root, "c", &sm, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(sm.step, step);
    ck_assert(step >= 1 && step < 10000000);
    fprintf(stderr, "  interrupted at step %ld, session saved there\n", step);
    fixture_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, resume_applies_every_setting);
    tcase_add_test(tc, resume_answers_before_loading);
    tcase_add_test(tc, bad_input_is_named);
    tcase_add_test(tc, snapshots_are_reported);
    tcase_add_test(tc, interrupt_saves_the_session);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
