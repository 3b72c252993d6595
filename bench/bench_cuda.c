/* Training throughput on the CUDA backend: a LoRA step and a BiLoRA darts
 * global step for RoBERTa-base- and GPT-2-medium-shaped encoders (random
 * weights: throughput does not depend on their values), against PyTorch +
 * transformers + PEFT on the same GPU in the same invocation
 * (bench/peft_lora_bench.py --device cuda), with the matmul peak measured
 * through the backend itself.
 *
 *   build/bench/bench_cuda [--models roberta-base,gpt2-medium] [--batch-size 32]
 *       [--seq-len 128] [--rank 8] [--steps 10] [--warmup 3] [--tf32]
 *       [--python .venv/bin/python] [--no-peer] [--no-bilevel] [--peak-size 8192]
 *       [--profile]
 *
 * Rows: the LoRA step; the peer's (with --tf32 the peer allows TF32 too);
 * the BiLoRA darts global step with T1 = 1 and T1 = 4 lower steps per upper
 * step, as a ratio to T1 LoRA steps. --profile adds, per model, a table of
 * where a LoRA step's time goes by op class (bench/backend_profile.h).
 *
 * Model configs come from $BILORA_ASSETS/models/NAME (default ../shared).
 * "GPT-2-medium-shaped" means the encoder this engine runs (post-LN,
 * RoBERTa-style) with GPT-2-medium's sizes: 24 layers, hidden 1024, 16 heads,
 * FFN 4096, vocabulary 50257; the PyTorch peer gets the same shape as a
 * RoBERTa config.
 *
 * Without a usable CUDA device it prints "bench_cuda: skipped: <reason>"
 * and exits 0. */
#include "engine/bilevel.h"
#include "engine/hypergrad.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "kernels/backend.h"
#include "bench/backend_profile.h"
#ifdef BILORA_CUDA
#include "kernels/cuda/backend_cuda.h"
#endif

#include <cjson/cJSON.h>
#include <math.h>
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

static void sync_device(void) {
#ifdef BILORA_CUDA
    backend_cuda_sync();
#endif
}

typedef struct {
    int B, T, rank, steps, warmup, peer, bilevel, tf32, peak_n, profile;
    const char *python;
} Opts;

/* FLOPs of one LoRA training step as the engine computes it (frozen base,
 * adapters on query and value): forward linears 2N(4C² + 2CI), attention
 * 4NTC; backward: input gradients of every linear (the same again),
 * attention 8NTC; LoRA ~20NCr per adapted layer pair. */
static double lora_step_flops(const ModelConfig *c, int B, int T, int r) {
    double N = (double)B * T, C = c->hidden_size, I = c->intermediate_size;
    double lin = 2.0 * N * (4 * C * C + 2 * C * I);
    double attn = 4.0 * N * T * C;
    double lora = 20.0 * N * C * r;
    return c->num_hidden_layers * (2 * lin + 3 * attn + lora);
}

/* The encoder this engine runs, with the named model's sizes. */
static int load_shape(const char *name, ModelConfig *cfg, int T, char *err, size_t errlen) {
    const char *assets = getenv("BILORA_ASSETS");
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/models/%s", assets && *assets ? assets : "../shared", name);
    if (model_config_load(cfg, dir, err, errlen) != 0) return -1;
    if (strcmp(cfg->model_type, "bert") != 0 && strcmp(cfg->model_type, "roberta") != 0) {
        snprintf(cfg->model_type, sizeof(cfg->model_type), "roberta");
        snprintf(cfg->hidden_act, sizeof(cfg->hidden_act), "gelu");
        cfg->type_vocab_size = 1;
        cfg->pad_token_id = 1;
    }
    if (cfg->max_position_embeddings < T + cfg->pad_token_id + 2)
        cfg->max_position_embeddings = T + cfg->pad_token_id + 2;
    return 0;
}

static void random_batch(Batch *bt, int B, int T, int vocab, uint64_t seed) {
    memset(bt, 0, sizeof(*bt)); /* batch_free frees every pointer it has */
    bt->B = B;
    bt->T = T;
    bt->ids = malloc(sizeof(int32_t) * B * T);
    bt->type_ids = calloc((size_t)B * T, sizeof(int32_t));
    bt->mask = malloc(sizeof(float) * B * T);
    bt->labels = malloc(sizeof(float) * B);
    uint64_t rng = seed;
    for (int i = 0; i < B * T; i++) {
        bt->ids[i] = 3 + (int32_t)rng_below(&rng, (uint64_t)vocab - 3);
        bt->mask[i] = 1.0f;
    }
    for (int b = 0; b < B; b++) bt->labels[b] = (float)(b % 2);
}

typedef struct {
    double step, fwd, bwd, opt; /* seconds per step */
} Timing;

static int time_lora(const Backend *be, const ModelConfig *cfg, const Opts *o, Timing *t,
                     char *err, size_t errlen) {
    ModelOptions mo = {.config = cfg, .random_init = 1, .num_labels = 2, .max_batch = o->B,
                       .max_seq = o->T, .adapter = {.rank = o->rank, .alpha = 2.0f * o->rank,
                                                 .targets = TARGET_QUERY | TARGET_VALUE},
                       .init_seed = 1};
    Model *m;
    if (model_load(&m, be, &mo, err, errlen) != 0) return -1;
    AdamW opt;
    if (adamw_init(&opt, be, &m->params, GROUP_LOWER, 0.01f, err, errlen) != 0) {
        model_free(m);
        return -1;
    }
    Batch bt;
    random_batch(&bt, o->B, o->T, cfg->vocab_size, 5);
    memset(t, 0, sizeof(*t));
    double t_start = 0;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        int timed = s >= o->warmup;
        /* profiled: the timed steps only, not the model's upload or warm-up */
        if (be == &g_prof && s == o->warmup) backend_profile_reset();
        sync_device();
        double t0 = now_s();
        if (s == o->warmup) t_start = t0;
        model_zero_grad(m);
        if (model_forward(m, &bt, 1, (uint64_t)s, err, errlen) != 0) break;
        model_loss(m, &bt, 1.0f, NULL); /* downloads the loss: synchronises */
        double t1 = now_s();
        model_backward(m, (uint64_t)s);
        sync_device();
        double t2 = now_s();
        clip_grad_norm(be, &m->params, GROUP_LOWER, 1.0);
        adamw_step(&opt, 1e-4f);
        sync_device();
        double t3 = now_s();
        if (timed) {
            t->fwd += t1 - t0;
            t->bwd += t2 - t1;
            t->opt += t3 - t2;
        }
    }
    t->step = (now_s() - t_start) / o->steps;
    t->fwd /= o->steps;
    t->bwd /= o->steps;
    t->opt /= o->steps;
    adamw_free(&opt);
    model_free(m);
    batch_free(&bt);
    return err[0] ? -1 : 0;
}

/* One BiLoRA darts global step with T2 = 1, as engine/train.c runs it:
 * `lower_steps` (T1) lower steps on D1 batches (with R1), then the darts
 * hypergradient of the upper group (λ) on a D2 batch (a forward and
 * backward at V on D2, and two at V ± ε on the last D1 batch), then the
 * upper AdamW step. */
static int time_bilora(const Backend *be, const ModelConfig *cfg, const Opts *o, int lower_steps,
                       double *step_s, char *err, size_t errlen) {
    ModelOptions mo = {.config = cfg, .random_init = 1, .num_labels = 2, .max_batch = o->B,
                       .max_seq = o->T,
                       .adapter = {.rank = o->rank, .alpha = 2.0f * o->rank, .form = ADAPTER_SVD,
                                   .lambda = LAMBDA_SOFTMAX, .bilevel = 1,
                                   .targets = TARGET_QUERY | TARGET_VALUE},
                       .init_seed = 1};
    Model *m;
    if (model_load(&m, be, &mo, err, errlen) != 0) return -1;
    size_t nl = param_list_numel(&m->params, GROUP_LOWER), nu = param_list_numel(&m->params, GROUP_UPPER);
    AdamW lower, upper;
    HyperWork hw;
    float *hyper = be->alloc(sizeof(float) * (nu ? nu : 1));
    if (adamw_init(&lower, be, &m->params, GROUP_LOWER, 0.01f, err, errlen) != 0 ||
        adamw_init(&upper, be, &m->params, GROUP_UPPER, 0.0f, err, errlen) != 0 ||
        hyperwork_init(&hw, be, nl, nu) != 0 || !hyper) {
        if (!err[0]) snprintf(err, errlen, "out of memory for the bi-level work buffers");
        model_free(m);
        return -1;
    }
    HypergradOptions ho = {.method = HYPERGRAD_DARTS, .darts_radius = 0.01f, .darts_xi = 0.0f,
                           .neumann_steps = 1, .neumann_alpha = 1.0f};
    Batch b1, b2;
    random_batch(&b1, o->B, o->T, cfg->vocab_size, 5);
    random_batch(&b2, o->B, o->T, cfg->vocab_size, 6);
    double t_start = 0;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        if (s == o->warmup) {
            sync_device();
            t_start = now_s();
        }
        uint64_t seed = 1000 + (uint64_t)s * 64;
        for (int l = 0; l < lower_steps; l++) {
            model_zero_grad(m);
            if (model_forward(m, &b1, 1, seed + 1, err, errlen) != 0) break;
            model_loss(m, &b1, 1.0f, NULL);
            model_backward(m, seed + 1);
            model_orth_reg(m, 0.1f);
            clip_grad_norm(be, &m->params, GROUP_LOWER, 1.0);
            adamw_step(&lower, 1e-4f);
        }
        if (err[0]) break;
        ModelProblem mp = {.m = m, .batch = {NULL, &b1, &b2}, .seed = {0, seed + 1, seed + 32},
                           .train = 1, .gamma1 = 0.1f, .gamma2 = 0.0f};
        HyperProblem pb;
        model_problem_bind(&pb, &mp);
        double l2;
        hypergrad_compute(&pb, &ho, NULL, hyper, &hw, &l2, NULL);
        group_scatter(be, &m->params, GROUP_UPPER, 1, hyper);
        clip_grad_norm(be, &m->params, GROUP_UPPER, 1.0);
        adamw_step(&upper, 1e-3f);
    }
    sync_device();
    *step_s = (now_s() - t_start) / o->steps;
    be->release(hyper);
    hyperwork_free(&hw);
    adamw_free(&lower);
    adamw_free(&upper);
    model_free(m);
    batch_free(&b1);
    batch_free(&b2);
    return err[0] ? -1 : 0;
}

/* The PyTorch + PEFT peer on the GPU: mean step time in seconds, 0 when it
 * did not run. The shape goes to it as a RoBERTa/BERT config.json. */
static double peer_step(const ModelConfig *cfg, const Opts *o, char *ver, size_t vercap) {
    char dir[] = "/tmp/bench_cuda_XXXXXX", err[512];
    if (!mkdtemp(dir)) return 0;
    double step = 0;
    if (model_config_save(cfg, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_cuda: %s\n", err);
    } else {
        char cmd[4096];
        snprintf(cmd, sizeof(cmd),
                 "%s bench/peft_lora_bench.py --config %s/config.json --device cuda --batch-size %d "
                 "--seq-len %d --rank %d --alpha %d --targets query,value --steps %d --warmup %d "
                 "--num-labels 2%s",
                 o->python, dir, o->B, o->T, o->rank, 2 * o->rank, o->steps, o->warmup,
                 o->tf32 ? " --tf32" : "");
        FILE *p = popen(cmd, "r");
        char line[8192];
        while (p && fgets(line, sizeof(line), p)) {
            cJSON *j = cJSON_Parse(line);
            if (!j) continue;
            cJSON *ms = cJSON_GetObjectItem(j, "step_ms");
            if (cJSON_IsNumber(ms)) {
                step = ms->valuedouble / 1000.0;
                cJSON *tv = cJSON_GetObjectItem(j, "torch"), *pv = cJSON_GetObjectItem(j, "peft"),
                      *av = cJSON_GetObjectItem(j, "attention");
                snprintf(ver, vercap, "torch %s, peft %s, %s attention",
                         cJSON_IsString(tv) ? tv->valuestring : "?",
                         cJSON_IsString(pv) ? pv->valuestring : "?",
                         cJSON_IsString(av) ? av->valuestring : "?");
            }
            cJSON_Delete(j);
        }
        if (p && pclose(p) != 0) step = 0;
        if (step <= 0) fprintf(stderr, "bench_cuda: the PyTorch+PEFT peer did not run (%s)\n", cmd);
    }
    char rm[256];
    snprintf(rm, sizeof(rm), "%s/config.json", dir);
    unlink(rm);
    rmdir(dir);
    return step;
}

/* TFLOP/s of be->matmul on n x n x n, the best of a few runs. */
static double matmul_tflops(const Backend *be, int n) {
    size_t bytes = sizeof(float) * (size_t)n * n;
    float *a = be->alloc(bytes), *b = be->alloc(bytes), *c = be->alloc(bytes);
    double best = 0;
    if (a && b && c) {
        /* random operands: zeros (or whatever the allocator left) can run
         * faster than real data */
        float *h = malloc(bytes);
        uint64_t rng = 12345;
        for (size_t i = 0; h && i < (size_t)n * n; i++) h[i] = (float)rng_uniform(&rng) - 0.5f;
        if (h) {
            be->upload(a, h, bytes);
            be->upload(b, h, bytes);
            free(h);
        }
        be->matmul(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm-up */
        sync_device();
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_s();
            be->matmul(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            sync_device();
            double tf = 2.0 * n * (double)n * n / (now_s() - t0) / 1e12;
            if (tf > best) best = tf;
        }
    }
    if (a) be->release(a);
    if (b) be->release(b);
    if (c) be->release(c);
    return best;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* each row as it is measured */
    Opts o = {.B = 32, .T = 128, .rank = 8, .steps = 10, .warmup = 3, .peer = 1, .bilevel = 1,
              .python = ".venv/bin/python", .peak_n = 8192};
    const char *models = "roberta-base,gpt2-medium";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-peer")) { o.peer = 0; continue; }
        if (!strcmp(a, "--no-bilevel")) { o.bilevel = 0; continue; }
        if (!strcmp(a, "--tf32")) { o.tf32 = 1; continue; }
        if (!strcmp(a, "--profile")) { o.profile = 1; continue; }
        if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; }
        if (!strcmp(a, "--models")) models = v;
        else if (!strcmp(a, "--batch-size")) o.B = atoi(v);
        else if (!strcmp(a, "--seq-len")) o.T = atoi(v);
        else if (!strcmp(a, "--rank")) o.rank = atoi(v);
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--python")) o.python = v;
        else if (!strcmp(a, "--peak-size")) o.peak_n = atoi(v);
        else { fprintf(stderr, "unknown flag %s\n", a); return 2; }
        i++;
    }
    if (o.B <= 0 || o.T <= 0 || o.rank <= 0 || o.steps <= 0 || o.warmup < 0 || o.peak_n <= 0) {
        fprintf(stderr, "bench_cuda: batch size, sequence length, rank and steps must be positive\n");
        return 2;
    }
    char err[1024];
    const Backend *be = backend_cuda(err, sizeof(err));
    if (!be) {
        printf("bench_cuda: skipped: %s\n", err);
        return 0;
    }
    char desc[512] = "";
#ifdef BILORA_CUDA
    backend_cuda_describe(desc, sizeof(desc));
    backend_cuda_set_tf32(0);
    double peak32 = matmul_tflops(be, o.peak_n);
    backend_cuda_set_tf32(1);
    double peaktf = matmul_tflops(be, o.peak_n);
    backend_cuda_set_tf32(o.tf32);
#else
    double peak32 = 0, peaktf = 0;
#endif
    double peak = o.tf32 ? peaktf : peak32;
    printf("bilora CUDA backend on %s\n", desc);
    printf("matmul peak through be->matmul (%d^3): fp32 %.1f TFLOP/s, tf32 %.1f TFLOP/s; this run "
           "uses %s\n", o.peak_n, peak32, peaktf, o.tf32 ? "TF32" : "full fp32 (as PyTorch's default)");
    printf("batch %d x seq %d, rank %d on query,value (+ head), %d timed steps after %d warm-up\n\n",
           o.B, o.T, o.rank, o.steps, o.warmup);
    printf("%-14s %-30s %9s %10s %8s %7s %s\n", "model", "step", "ms/step", "tokens/s", "TFLOP/s",
           "%peak", "notes");

    char list[512];
    snprintf(list, sizeof(list), "%s", models);
    int rc = 0;
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        ModelConfig cfg;
        if (load_shape(name, &cfg, o.T, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_cuda: %s\n", err);
            rc = 1;
            continue;
        }
        double flops = lora_step_flops(&cfg, o.B, o.T, o.rank);
        double tokens = (double)o.B * o.T;
        Timing t;
        err[0] = 0;
        if (time_lora(be, &cfg, &o, &t, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_cuda: %s lora: %s\n", name, err);
            rc = 1;
            continue;
        }
        char notes[256];
        snprintf(notes, sizeof(notes), "fwd %.1f, bwd %.1f, clip+adamw %.1f ms", t.fwd * 1e3,
                 t.bwd * 1e3, t.opt * 1e3);
        printf("%-14s %-30s %9.1f %10.0f %8.1f %6.1f%% %s\n", name, "lora (bilora cuda)", t.step * 1e3,
               tokens / t.step, flops / t.step / 1e12, 100.0 * flops / t.step / 1e12 / peak, notes);
        if (o.peer) {
            char ver[256] = "";
            double ps = peer_step(&cfg, &o, ver, sizeof(ver));
            if (ps > 0)
                printf("%-14s %-30s %9.1f %10.0f %8.1f %6.1f%% bilora is %.2fx its throughput (%s)\n",
                       name, "lora (pytorch+peft, cuda)", ps * 1e3, tokens / ps, flops / ps / 1e12,
                       100.0 * flops / ps / 1e12 / peak, ps / t.step, ver);
        }
        for (int t1 = 1; o.bilevel && t1 <= 4; t1 += 3) {
            double bs;
            err[0] = 0;
            if (time_bilora(be, &cfg, &o, t1, &bs, err, sizeof(err)) != 0) {
                fprintf(stderr, "bench_cuda: %s bilora: %s\n", name, err);
                rc = 1;
                break;
            }
            char label[64];
            snprintf(label, sizeof(label), "bilora darts, T1=%d", t1);
            printf("%-14s %-30s %9.1f %10.0f %8s %7s %.2fx %d LoRA step%s%s\n", name, label,
                   bs * 1e3, tokens * t1 / bs, "", "", bs / t.step / t1, t1, t1 > 1 ? "s" : "",
                   t1 == 1 ? " (BiDoRA paper: 3.92x)" : "");
        }
        if (o.profile) {
            Opts po = o;
            po.steps = 3;
            po.warmup = 1;
            Timing pt;
            const Backend *pb = backend_profile(be, sync_device);
            err[0] = 0;
            if (time_lora(pb, &cfg, &po, &pt, err, sizeof(err)) == 0) {
                char title[128];
                snprintf(title, sizeof(title), "%s lora step", name);
                backend_profile_print(title, po.steps);
            } else {
                fprintf(stderr, "bench_cuda: %s profile: %s\n", name, err);
                rc = 1;
            }
        }
    }
    return rc;
}
