/* The cost of bi-level training: wall time of one global step of bilora
 * with each hypergradient method, and of bidora (darts), as a ratio to one
 * LoRA step, measured in this one run on the same model shape and batch.
 * T2 = 1; T1 = --lower-steps (default 1): a global step then holds T1 lower
 * steps and is held against T1 LoRA steps, the same D1 examples. The BiDoRA
 * paper reports 3.92x LoRA's cost.
 *
 *   build/bench/bench_bilevel [--config DIR] [--layers N] [--batch-size 32]
 *       [--seq-len 128] [--rank 8] [--steps 3] [--threads N] [--lower-steps T1]
 *
 * Where the time goes: a global step is T1 lower forward+backward passes,
 * then the hypergradient's gradient evaluations (first-order 1, darts 3,
 * neumann K=1 5), each a forward+backward; the table prints the count. */
#include "engine/bilevel.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/optim.h"
#include "engine/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *name;
    AdapterForm form;
    int bilevel;
    HypergradMethod method;
} Variant;

int main(int argc, char **argv) {
    const char *config_path = NULL;
    int layers = 0, B = 32, T = 128, rank = 8, steps = 3, threads = 0, t1 = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config_path = argv[i + 1];
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch-size")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq-len")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rank")) rank = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lower-steps")) t1 = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown flag %s\n", argv[i]); return 2; }
    }
    if (t1 < 1 || B < 1 || T < 1 || steps < 1) {
        fprintf(stderr, "bench_bilevel: --lower-steps, --batch-size, --seq-len and --steps must be at least 1\n");
        return 2;
    }
    char defcfg[1200];
    if (!config_path) {
        const char *assets = getenv("BILORA_ASSETS");
        snprintf(defcfg, sizeof(defcfg), "%s/models/bert-mini", assets && *assets ? assets : "../shared");
        config_path = defcfg;
    }
    if (threads > 0) backend_cpu_set_threads(threads);
    char err[1024];
    ModelConfig cfg;
    if (model_config_load(&cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_bilevel: %s\n", err);
        return 1;
    }
    if (layers > 0) cfg.num_hidden_layers = layers;
    Variant vs[] = {
        {"lora", ADAPTER_LORA, 0, HYPERGRAD_FIRST_ORDER},
        {"bilora first-order", ADAPTER_SVD, 1, HYPERGRAD_FIRST_ORDER},
        {"bilora darts", ADAPTER_SVD, 1, HYPERGRAD_DARTS},
        {"bilora neumann K=1", ADAPTER_SVD, 1, HYPERGRAD_NEUMANN},
        {"bidora darts", ADAPTER_DORA, 1, HYPERGRAD_DARTS},
    };
    int nv = (int)(sizeof(vs) / sizeof(vs[0]));
    double secs[8];
    int evals[8];
    Batch b1 = {.B = B, .T = T}, b2 = {.B = B, .T = T};
    Batch *bs[2] = {&b1, &b2};
    uint64_t rng = 9;
    for (int k = 0; k < 2; k++) {
        bs[k]->ids = malloc(sizeof(int32_t) * B * T);
        bs[k]->type_ids = calloc((size_t)B * T, sizeof(int32_t));
        bs[k]->mask = malloc(sizeof(float) * B * T);
        bs[k]->labels = malloc(sizeof(float) * B);
        for (int i = 0; i < B * T; i++) {
            bs[k]->ids[i] = 3 + (int32_t)rng_below(&rng, (uint64_t)cfg.vocab_size - 3);
            bs[k]->mask[i] = 1.0f;
        }
        for (int i = 0; i < B; i++) bs[k]->labels[i] = (float)(i % 2);
    }
    for (int v = 0; v < nv; v++) {
        ModelOptions mo = {.config = &cfg, .random_init = 1, .num_labels = 2, .max_batch = B, .max_seq = T,
                           .adapter = {.rank = rank, .alpha = 2.0f * rank, .form = vs[v].form,
                                       .lambda = LAMBDA_SOFTMAX, .bilevel = vs[v].bilevel,
                                       .targets = TARGET_QUERY | TARGET_VALUE},
                           .init_seed = 1};
        Model *m;
        if (model_load(&m, backend_cpu(), &mo, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_bilevel: %s\n", err);
            return 1;
        }
        AdamW lo, up;
        adamw_init(&lo, m->be, &m->params, GROUP_LOWER, 0.01f, err, sizeof(err));
        adamw_init(&up, m->be, &m->params, GROUP_UPPER, 0.0f, err, sizeof(err));
        HyperWork hw;
        size_t nl = param_list_numel(&m->params, GROUP_LOWER), nu = param_list_numel(&m->params, GROUP_UPPER);
        hyperwork_init(&hw, m->be, nl, nu);
        float *hyper = m->be->alloc(sizeof(float) * (nu ? nu : 1));
        HypergradOptions ho = {.method = vs[v].method, .darts_radius = 0.01f, .neumann_steps = 1,
                               .neumann_alpha = 1.0f};
        double t0 = 0;
        for (int s = 0; s < steps + 1; s++) {
            if (s == 1) t0 = now_s(); /* the first step warms up */
            for (int k = 0; k < t1; k++) {
                model_zero_grad(m);
                model_forward(m, &b1, 1, (uint64_t)(s * t1 + k), err, sizeof(err));
                model_loss(m, &b1, 1.0f, NULL);
                model_backward(m, (uint64_t)(s * t1 + k));
                clip_grad_norm(m->be, &m->params, GROUP_LOWER, 1.0);
                adamw_step(&lo, 1e-4f);
            }
            evals[v] = t1;
            if (vs[v].bilevel) {
                ModelProblem mp = {.m = m, .batch = {NULL, &b1, &b2}, .seed = {0, (uint64_t)s, (uint64_t)s + 99},
                                   .train = 1};
                HyperProblem pb;
                model_problem_bind(&pb, &mp);
                evals[v] += hypergrad_compute(&pb, &ho, NULL, hyper, &hw, NULL, NULL);
                group_scatter(m->be, &m->params, GROUP_UPPER, 1, hyper);
                adamw_step(&up, 1e-3f);
            }
        }
        secs[v] = (now_s() - t0) / steps;
        m->be->release(hyper);
        hyperwork_free(&hw);
        adamw_free(&lo);
        adamw_free(&up);
        model_free(m);
        fprintf(stderr, "bench_bilevel: %s done (%.2f s/step)\n", vs[v].name, secs[v]);
    }
    printf("Global step cost (T1 = %d, T2 = 1; against %d LoRA step%s), %s shape: %d layers, hidden %d; batch %d x seq %d, r=%d on "
           "query,value; %d threads, %d timed steps each\n\n",
           t1, t1, t1 > 1 ? "s" : "", cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, B, T, rank,
           threads > 0 ? threads : backend_cpu_threads(), steps);
    printf("%-22s %10s %14s %12s\n", "method", "s/step", "fwd+bwd passes", t1 > 1 ? "x LoRA steps" : "x LoRA step");
    for (int v = 0; v < nv; v++)
        printf("%-22s %10.3f %14d %12.2f\n", vs[v].name, secs[v], evals[v], secs[v] / secs[0]);
    printf("\n(the BiDoRA paper: 3.92x LoRA per step)\n");
    for (int k = 0; k < 2; k++) batch_free(bs[k]);
    return 0;
}
