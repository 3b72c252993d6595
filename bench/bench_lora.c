/* LoRA fine-tuning throughput: bilora against PyTorch + transformers + PEFT
 * (bench/peft_lora_bench.py, run in the same invocation on the same cores),
 * same model shape, batch, sequence length, rank and targets. Random
 * weights: throughput does not depend on their values.
 *
 *   build/bench/bench_lora [--config FILE] [--layers N] [--batch-size 32]
 *       [--seq-len 128] [--rank 8] [--steps 10] [--warmup 2] [--threads N]
 *       [--python .venv/bin/python] [--no-peer]
 *
 * Prints a table: examples/s, tokens/s, ms/step and the ratio. */
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/optim.h"
#include "engine/rng.h"

#include <cjson/cJSON.h>
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

int main(int argc, char **argv) {
    const char *config_path = NULL, *python = ".venv/bin/python";
    int layers = 0, B = 32, T = 128, rank = 8, steps = 10, warmup = 2, threads = 0, peer = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-peer")) { peer = 0; continue; }
        if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; }
        if (!strcmp(a, "--config")) config_path = v;
        else if (!strcmp(a, "--layers")) layers = atoi(v);
        else if (!strcmp(a, "--batch-size")) B = atoi(v);
        else if (!strcmp(a, "--seq-len")) T = atoi(v);
        else if (!strcmp(a, "--rank")) rank = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--python")) python = v;
        else { fprintf(stderr, "unknown flag %s\n", a); return 2; }
        i++;
    }
    char defcfg[1200];
    if (!config_path) {
        const char *assets = getenv("BILORA_ASSETS");
        snprintf(defcfg, sizeof(defcfg), "%s/models/bert-mini", assets && *assets ? assets : "../shared");
        config_path = defcfg;
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    backend_cpu_set_threads(threads);
    char err[1024];
    ModelConfig cfg;
    if (model_config_load(&cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_lora: %s\n", err);
        return 1;
    }
    if (layers > 0) cfg.num_hidden_layers = layers;
    ModelOptions mo = {.config = &cfg, .random_init = 1, .num_labels = 2, .max_batch = B,
                       .max_seq = T, .adapter = {.rank = rank, .alpha = 2.0f * rank,
                                              .targets = TARGET_QUERY | TARGET_VALUE},
                       .init_seed = 1};
    Model *m;
    if (model_load(&m, backend_cpu(), &mo, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_lora: %s\n", err);
        return 1;
    }
    AdamW opt;
    if (adamw_init(&opt, m->be, &m->params, GROUP_LOWER, 0.01f, err, sizeof(err)) != 0) return 1;
    Batch bt = {.B = B, .T = T};
    bt.ids = malloc(sizeof(int32_t) * B * T);
    bt.type_ids = calloc((size_t)B * T, sizeof(int32_t));
    bt.mask = malloc(sizeof(float) * B * T);
    bt.labels = malloc(sizeof(float) * B);
    uint64_t rng = 5;
    for (int i = 0; i < B * T; i++) {
        bt.ids[i] = 3 + (int32_t)rng_below(&rng, (uint64_t)cfg.vocab_size - 3);
        bt.mask[i] = 1.0f;
    }
    for (int b = 0; b < B; b++) bt.labels[b] = (float)(b % 2);
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = now_s();
        model_zero_grad(m);
        if (model_forward(m, &bt, 1, (uint64_t)s, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_lora: %s\n", err);
            return 1;
        }
        model_loss(m, &bt, 1.0f, NULL);
        model_backward(m, (uint64_t)s);
        clip_grad_norm(m->be, &m->params, GROUP_LOWER, 1.0);
        adamw_step(&opt, 1e-4f);
    }
    double dt = (now_s() - t0) / steps;
    size_t trainable = param_list_numel(&m->params, GROUP_LOWER);

    double peer_step = 0;
    char peer_ver[256] = "";
    if (peer) {
        char cmd[4096];
        snprintf(cmd, sizeof(cmd),
                 "%s bench/peft_lora_bench.py --config %s/config.json %s%d --batch-size %d --seq-len %d "
                 "--rank %d --alpha %d --targets query,value --steps %d --warmup %d --threads %d",
                 python, config_path, "--layers ",
                 cfg.num_hidden_layers, B, T, rank, 2 * rank, steps, warmup, threads);
        FILE *p = popen(cmd, "r");
        char line[8192];
        while (p && fgets(line, sizeof(line), p)) {
            cJSON *j = cJSON_Parse(line);
            if (!j) continue;
            cJSON *ms = cJSON_GetObjectItem(j, "step_ms");
            if (cJSON_IsNumber(ms)) {
                peer_step = ms->valuedouble / 1000.0;
                cJSON *tv = cJSON_GetObjectItem(j, "torch"), *pv = cJSON_GetObjectItem(j, "peft");
                snprintf(peer_ver, sizeof(peer_ver), "torch %s, peft %s",
                         cJSON_IsString(tv) ? tv->valuestring : "?",
                         cJSON_IsString(pv) ? pv->valuestring : "?");
            }
            cJSON_Delete(j);
        }
        if (p && pclose(p) != 0) peer_step = 0;
        if (peer_step <= 0) fprintf(stderr, "bench_lora: the PyTorch+PEFT peer did not run (%s)\n", cmd);
    }

    printf("LoRA fine-tuning step (forward+backward+AdamW), %s model shape: %d layers, hidden %d, "
           "heads %d, FFN %d\n", cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size,
           cfg.num_attention_heads, cfg.intermediate_size);
    printf("batch %d x seq %d, LoRA r=%d on query,value (+ head), %zu trainable, %d threads, "
           "%d timed steps after %d warm-up\n\n", B, T, rank, trainable, threads, steps, warmup);
    printf("%-26s %12s %12s %10s %8s\n", "implementation", "examples/s", "tokens/s", "ms/step", "ratio");
    printf("%-26s %12.1f %12.0f %10.1f %8s\n", "bilora (cpu)", B / dt, B * T / dt, dt * 1e3, "1.00");
    if (peer_step > 0)
        printf("%-26s %12.1f %12.0f %10.1f %8.2f\n", "pytorch+transformers+peft", B / peer_step,
               B * T / peer_step, peer_step * 1e3, dt / peer_step);
    if (peer_step > 0)
        printf("\nbilora is %.2fx the throughput of PyTorch+PEFT (%s)\n", peer_step / dt, peer_ver);
    adamw_free(&opt);
    model_free(m);
    batch_free(&bt);
    return 0;
}
