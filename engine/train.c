/* The single-level fine-tuning loop (LoRA + head) on a GLUE task. */
#include "engine/train.h"

#include "datasets/batch.h"
#include "datasets/glue.h"
#include "datasets/tokenizer.h"
#include "engine/assets.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "lora");
    c->rank = 8;
    c->alpha = 16.0f;
    c->lora_dropout = 0.0f;
    snprintf(c->targets, sizeof(c->targets), "query,value");
    c->lr = 5e-4f;
    c->weight_decay = 0.01f;
    c->warmup_ratio = 0.06f;
    c->max_grad_norm = 1.0f;
    c->batch_size = 32;
    c->max_seq_len = 128;
    c->epochs = 3;
    c->steps = 0;
    c->eval_every = 0;
    c->eval_train_examples = 512;
    c->seed = 42;
    snprintf(c->device, sizeof(c->device), "cpu");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void info(const TrainCallbacks *cb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void info(const TrainCallbacks *cb, const char *fmt, ...) {
    if (!cb || !cb->on_info) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cb->on_info(cb->ctx, buf);
}

/* Scores examples idx[0..n) (in batches, eval mode): mean loss and metrics. */
static int evaluate(Model *m, const GlueTaskInfo *task, const EncodedSet *set, const int *idx,
                    int n, int batch_size, int pad_id, EvalInfo *out, char *err, size_t errlen) {
    float *preds = malloc(sizeof(float) * (n ? n : 1));
    float *labels = malloc(sizeof(float) * (n ? n : 1));
    float *logits = malloc(sizeof(float) * (size_t)batch_size * m->num_labels);
    if (!preds || !labels || !logits) {
        free(preds); free(labels); free(logits);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    double loss_sum = 0.0;
    int rc = 0;
    for (int s = 0; s < n && rc == 0; s += batch_size) {
        int B = n - s < batch_size ? n - s : batch_size;
        Batch bt;
        if (batch_build(set, idx + s, B, pad_id, &bt) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (model_forward(m, &bt, 0, 0, err, errlen) != 0) { batch_free(&bt); rc = -1; break; }
        loss_sum += model_loss(m, &bt, 0.0f, NULL) * B;
        m->be->download(logits, model_logits(m), sizeof(float) * B * m->num_labels);
        for (int b = 0; b < B; b++) {
            labels[s + b] = bt.labels[b];
            if (m->num_labels == 1) {
                preds[s + b] = logits[b];
            } else {
                int best = 0;
                for (int c = 1; c < m->num_labels; c++)
                    if (logits[b * m->num_labels + c] > logits[b * m->num_labels + best]) best = c;
                preds[s + b] = (float)best;
            }
        }
        batch_free(&bt);
    }
    if (rc == 0) {
        out->loss = n ? loss_sum / n : 0.0;
        out->examples = n;
        glue_metrics(task, preds, labels, n, &out->metrics);
    }
    free(preds);
    free(labels);
    free(logits);
    return rc;
}

static void shuffle(int *a, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint64_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

typedef struct {
    const GlueTaskInfo *task;
    Tokenizer *tok;
    GlueSplit train_raw, dev_raw[2];
    EncodedSet train, dev[2];
    int n_dev;
    Model *model;
    AdamW opt;
    int *order, *dev_idx, *train_eval_idx;
} Run;

static void run_free(Run *r) {
    adamw_free(&r->opt);
    model_free(r->model);
    encoded_set_free(&r->train);
    glue_split_free(&r->train_raw);
    for (int i = 0; i < r->n_dev; i++) {
        encoded_set_free(&r->dev[i]);
        glue_split_free(&r->dev_raw[i]);
    }
    tokenizer_free(r->tok);
    free(r->order);
    free(r->dev_idx);
    free(r->train_eval_idx);
}

static int run_setup(Run *r, const TrainConfig *cfg, const TrainCallbacks *cb, char *err,
                     size_t errlen) {
    if (strcmp(cfg->method, "lora") != 0) {
        snprintf(err, errlen, "--method '%s' is not available yet; supported: lora", cfg->method);
        return -1;
    }
    if (strcmp(cfg->device, "cpu") != 0 && strcmp(cfg->device, "auto") != 0) {
        snprintf(err, errlen, "--device '%s' is not available in this build; supported: cpu, auto",
                 cfg->device);
        return -1;
    }
    r->task = glue_task_info(cfg->task);
    if (!r->task) {
        snprintf(err, errlen, "unknown task '%s'; GLUE tasks: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, "
                 "QNLI, RTE, WNLI", cfg->task);
        return -1;
    }
    char model_dir[4096], data_dir[4096];
    if (assets_find_model(cfg->model, model_dir, sizeof(model_dir), err, errlen) != 0) return -1;
    if (cfg->data[0]) snprintf(data_dir, sizeof(data_dir), "%s", cfg->data);
    else if (assets_find_task(r->task->name, data_dir, sizeof(data_dir), err, errlen) != 0) return -1;

    ModelConfig mc;
    if (model_config_load(&mc, model_dir, err, errlen) != 0) return -1;
    if (tokenizer_load(&r->tok, model_dir, mc.model_type, err, errlen) != 0) return -1;
    if (glue_load(data_dir, r->task, "train", &r->train_raw, err, errlen) != 0) return -1;
    r->n_dev = r->task->num_dev_splits;
    for (int i = 0; i < r->n_dev; i++)
        if (glue_load(data_dir, r->task, r->task->dev_splits[i], &r->dev_raw[i], err, errlen) != 0)
            return -1;
    if (encode_glue(r->tok, &r->train_raw, cfg->max_seq_len, &r->train, err, errlen) != 0) return -1;
    for (int i = 0; i < r->n_dev; i++)
        if (encode_glue(r->tok, &r->dev_raw[i], cfg->max_seq_len, &r->dev[i], err, errlen) != 0)
            return -1;
    if (r->train.n == 0) {
        snprintf(err, errlen, "%s/train.tsv has no examples", data_dir);
        return -1;
    }
    info(cb, "task %s: %d train / %d %s examples from %s (longest %d tokens, %d truncated to %d)",
         r->task->name, r->train.n, r->dev[0].n, r->task->dev_splits[0], data_dir, r->train.longest,
         r->train.truncated, cfg->max_seq_len);

    int targets;
    if (targets_parse(cfg->targets, &targets, err, errlen) != 0) return -1;
    int max_seq = r->train.longest;
    for (int i = 0; i < r->n_dev; i++) if (r->dev[i].longest > max_seq) max_seq = r->dev[i].longest;
    ModelOptions mo = {
        .model_dir = model_dir,
        .num_labels = r->task->num_labels,
        .max_batch = cfg->batch_size,
        .max_seq = max_seq,
        .adapter = {.rank = cfg->rank, .alpha = cfg->alpha, .dropout = cfg->lora_dropout,
                 .targets = targets},
        .init_seed = cfg->seed,
    };
    if (model_load(&r->model, backend_cpu(), &mo, err, errlen) != 0) return -1;
    size_t trainable = param_list_numel(&r->model->params, GROUP_LOWER);
    info(cb, "model %s (%s, %d layers, hidden %d): %zu parameters, %zu trainable (%.3f%%), "
         "LoRA r=%d alpha=%g on %s, device %s",
         model_dir, r->model->cfg.model_type, r->model->cfg.num_hidden_layers,
         r->model->cfg.hidden_size, r->model->base_numel + trainable, trainable,
         100.0 * trainable / (double)(r->model->base_numel + trainable), cfg->rank, cfg->alpha,
         cfg->targets, r->model->be->name);
    if (adamw_init(&r->opt, r->model->be, &r->model->params, GROUP_LOWER, cfg->weight_decay, err,
                   errlen) != 0)
        return -1;
    return 0;
}

int train_run(const TrainConfig *cfg, const TrainCallbacks *cb, char *err, size_t errlen) {
    if (cfg->batch_size <= 0 || cfg->max_seq_len < 8 || cfg->rank <= 0 || cfg->lr <= 0.0f ||
        (cfg->steps <= 0 && cfg->epochs <= 0)) {
        snprintf(err, errlen, "invalid settings: need --batch-size > 0, --max-seq-len >= 8, "
                 "--rank > 0, --lr > 0 and --steps or --epochs > 0");
        return -1;
    }
    Run r;
    memset(&r, 0, sizeof(r));
    if (run_setup(&r, cfg, cb, err, errlen) != 0) { run_free(&r); return -1; }
    Model *m = r.model;
    const int B = cfg->batch_size;
    int n_train = r.train.n;
    if (cfg->overfit_batch > 0) n_train = cfg->overfit_batch < n_train ? cfg->overfit_batch : n_train;
    long steps_per_epoch = (n_train + B - 1) / B;
    long total = cfg->steps > 0 ? cfg->steps : steps_per_epoch * cfg->epochs;
    long warmup = (long)(cfg->warmup_ratio * total);
    long eval_every = cfg->eval_every > 0 ? cfg->eval_every : steps_per_epoch;
    int pad = tokenizer_pad_id(r.tok);

    r.order = malloc(sizeof(int) * n_train);
    int dev_max = 1;
    for (int d = 0; d < r.n_dev; d++) if (r.dev[d].n > dev_max) dev_max = r.dev[d].n;
    r.dev_idx = malloc(sizeof(int) * dev_max);
    int n_te = cfg->eval_train_examples < r.train.n ? cfg->eval_train_examples : r.train.n;
    if (cfg->overfit_batch > 0) n_te = n_train;
    r.train_eval_idx = malloc(sizeof(int) * (n_te > 0 ? n_te : 1));
    if (!r.order || !r.dev_idx || !r.train_eval_idx) {
        snprintf(err, errlen, "out of memory");
        run_free(&r);
        return -1;
    }
    uint64_t data_rng = rng_derive(cfg->seed, 2);
    for (int i = 0; i < n_train; i++) r.order[i] = i;
    if (cfg->overfit_batch <= 0) shuffle(r.order, n_train, &data_rng);
    /* the training examples scored at each evaluation: a fixed seeded sample */
    {
        int *all = malloc(sizeof(int) * r.train.n);
        if (!all) { snprintf(err, errlen, "out of memory"); run_free(&r); return -1; }
        uint64_t erng = rng_derive(cfg->seed, 3);
        for (int i = 0; i < r.train.n; i++) all[i] = i;
        if (cfg->overfit_batch <= 0) shuffle(all, r.train.n, &erng);
        memcpy(r.train_eval_idx, all, sizeof(int) * n_te);
        free(all);
    }

    DoneInfo done;
    memset(&done, 0, sizeof(done));
    done.trainable_params = param_list_numel(&m->params, GROUP_LOWER);
    done.total_params = m->base_numel + done.trainable_params;
    double t0 = now_s(), t_last = t0;
    long cursor = 0;
    int rc = 0;
    int *bidx = malloc(sizeof(int) * B);
    if (!bidx) { snprintf(err, errlen, "out of memory"); run_free(&r); return -1; }
    for (long step = 1; step <= total && rc == 0; step++) {
        int nb = 0;
        while (nb < B) {
            if (cursor == n_train) {
                cursor = 0;
                if (cfg->overfit_batch <= 0) shuffle(r.order, n_train, &data_rng);
                if (nb > 0) break; /* the epoch's last, partial batch */
            }
            bidx[nb++] = r.order[cursor++];
        }
        Batch bt;
        if (batch_build(&r.train, bidx, nb, pad, &bt) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        uint64_t step_seed = rng_derive(cfg->seed, 1000003ULL + (uint64_t)step);
        model_zero_grad(m);
        if (model_forward(m, &bt, 1, step_seed, err, errlen) != 0) { batch_free(&bt); rc = -1; break; }
        double loss = model_loss(m, &bt, 1.0f, NULL);
        batch_free(&bt);
        if (!isfinite(loss)) {
            snprintf(err, errlen, "loss became %f at step %ld (lr %g); stopping instead of training "
                     "on garbage", loss, step, cfg->lr);
            rc = -1;
            break;
        }
        model_backward(m, step_seed);
        double gn = clip_grad_norm(m->be, &m->params, GROUP_LOWER, cfg->max_grad_norm);
        float lr = lr_linear_schedule(cfg->lr, step - 1, warmup, total);
        adamw_step(&r.opt, lr);
        done.final_train_loss = loss;

        double t = now_s();
        StepInfo si = {.step = step, .total_steps = total,
                       .epoch = (double)(step * B) / n_train, .loss = loss, .lr = lr,
                       .grad_norm = gn, .examples_per_s = nb / (t - t_last),
                       .step_seconds = t - t_last};
        t_last = t;
        if (cb && cb->on_step) cb->on_step(cb->ctx, &si);

        if (step % eval_every == 0 || step == total) {
            EvalInfo ev;
            memset(&ev, 0, sizeof(ev));
            ev.step = step;
            ev.split = "train";
            if (evaluate(m, r.task, &r.train, r.train_eval_idx, n_te, B, pad, &ev, err, errlen) != 0) {
                rc = -1;
                break;
            }
            if (cb && cb->on_eval) cb->on_eval(cb->ctx, &ev);
            for (int d = 0; d < r.n_dev && cfg->overfit_batch <= 0; d++) {
                EvalInfo dv;
                memset(&dv, 0, sizeof(dv));
                dv.step = step;
                dv.split = r.task->dev_splits[d];
                for (int i = 0; i < r.dev[d].n; i++) r.dev_idx[i] = i;
                if (evaluate(m, r.task, &r.dev[d], r.dev_idx, r.dev[d].n, B, pad, &dv, err,
                             errlen) != 0) {
                    rc = -1;
                    break;
                }
                if (cb && cb->on_eval) cb->on_eval(cb->ctx, &dv);
                if (d == 0) { done.last_dev = dv; done.has_dev = 1; }
            }
            t_last = now_s(); /* evaluation time is not training throughput */
        }
        done.steps = step;
    }
    free(bidx);
    done.seconds = now_s() - t0;
    if (rc == 0 && cb && cb->on_done) cb->on_done(cb->ctx, &done);
    run_free(&r);
    return rc;
}
