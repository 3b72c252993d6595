/* `bilora train`: a headless run with JSON lines or a progress bar. */
#include "engine/train.h"
#include "ui/commands.h"
#include "ui/options.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int json;
    int tty;
    long last_line_step;
} Out;

static void print_metrics(FILE *f, const MetricSet *m, int json) {
    for (int i = 0; i < m->n; i++) {
        if (json) fprintf(f, "%s\"%s\":%.6f", i ? "," : "", m->name[i], m->value[i]);
        else fprintf(f, " %s %.4f", m->name[i], m->value[i]);
    }
}

static void on_info(void *ctx, const char *msg) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"info\",\"message\":\"");
        for (const char *p = msg; *p; p++) {
            if (*p == '"' || *p == '\\') putchar('\\');
            putchar(*p);
        }
        printf("\"}\n");
        fflush(stdout);
    } else {
        fprintf(stderr, "%s\n", msg);
    }
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, cap, "--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

static void on_step(void *ctx, const StepInfo *s) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"step\",\"step\":%ld,\"phase\":%d,\"epoch\":%.4f,\"loss\":%.6f,"
               "\"lr\":%.6g,\"grad_norm\":%.4f,\"examples_per_s\":%.1f",
               s->step, s->phase, s->epoch, s->loss, s->lr, s->grad_norm, s->examples_per_s);
        if (isfinite(s->reg)) printf(",\"reg\":%.6g", s->reg);
        if (isfinite(s->upper_loss))
            printf(",\"upper_loss\":%.6f,\"upper_lr\":%.6g,\"hypergrad_norm\":%.6g", s->upper_loss,
                   s->upper_lr, s->hypergrad_norm);
        printf("}\n");
        fflush(stdout);
        return;
    }
    char eta[32];
    fmt_eta(eta, sizeof(eta), (double)(s->total_steps - s->step) * s->step_seconds);
    int width = 30, filled = (int)(width * (double)s->step / s->total_steps);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    if (o->tty) {
        fprintf(stderr, "\r[%s] step %ld/%ld  epoch %.2f  loss %.4f", bar, s->step, s->total_steps,
                s->epoch, s->loss);
        if (isfinite(s->upper_loss)) fprintf(stderr, "  upper %.4f", s->upper_loss);
        fprintf(stderr, "  lr %.2e  %.1f ex/s  ETA %s   ", s->lr, s->examples_per_s, eta);
    } else if (s->step == 1 || s->step == s->total_steps ||
               s->step - o->last_line_step >= (s->total_steps >= 20 ? s->total_steps / 20 : 1)) {
        fprintf(stderr, "[%s] step %ld/%ld  epoch %.2f  loss %.4f", bar, s->step, s->total_steps,
                s->epoch, s->loss);
        if (isfinite(s->upper_loss)) fprintf(stderr, "  upper %.4f", s->upper_loss);
        fprintf(stderr, "  lr %.2e  %.1f ex/s  ETA %s\n", s->lr, s->examples_per_s, eta);
        o->last_line_step = s->step;
    }
}

static void on_eval(void *ctx, const EvalInfo *e) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"eval\",\"step\":%ld,\"split\":\"%s\",\"loss\":%.6f,\"examples\":%d,"
               "\"metrics\":{",
               e->step, e->split, e->loss, e->examples);
        print_metrics(stdout, &e->metrics, 1);
        printf("}}\n");
        fflush(stdout);
        return;
    }
    if (o->tty) fprintf(stderr, "\n");
    fprintf(stderr, "eval step %ld  %-5s loss %.4f ", e->step, e->split, e->loss);
    print_metrics(stderr, &e->metrics, 0);
    fprintf(stderr, "  (%d examples)\n", e->examples);
}

static void json_number(double v) {
    if (isfinite(v)) printf("%.6g", v);
    else printf("null");
}

static void on_spectrum(void *ctx, const SpectrumInfo *s) {
    Out *o = ctx;
    if (!o->json) {
        if (s->n == 0) return;
        /* one readable line: the largest and smallest value over matrices */
        double top = 0, bottom = INFINITY;
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->rows[i].n; j++) {
                double v = s->rows[i].values[j];
                if (v > top) top = v;
                if (v < bottom) bottom = v;
            }
        if (o->tty) fprintf(stderr, "\n");
        fprintf(stderr, "spectrum step %ld: %d matrices, singular values in [%.3g, %.3g]\n", s->step,
                s->n, bottom, top);
        return;
    }
    printf("{\"event\":\"spectrum\",\"step\":%ld,\"matrices\":[", s->step);
    for (int i = 0; i < s->n; i++) {
        const SpectrumRow *r = &s->rows[i];
        printf("%s{\"name\":\"%s\",\"values\":[", i ? "," : "", r->name);
        for (int j = 0; j < r->n; j++) {
            if (j) printf(",");
            json_number(r->values[j]);
        }
        printf("]");
        if (isfinite(r->orth)) printf(",\"orth\":%.6g", r->orth);
        if (isfinite(r->magnitude_change)) printf(",\"magnitude_change\":%.6g", r->magnitude_change);
        if (isfinite(r->direction_change)) printf(",\"direction_change\":%.6g", r->direction_change);
        printf("}");
    }
    printf("]}\n");
    fflush(stdout);
}

static void on_done(void *ctx, const DoneInfo *d) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"done\",\"steps\":%ld,\"seconds\":%.2f,\"train_loss\":%.6f,"
               "\"trainable_params\":%zu,\"upper_params\":%zu,\"total_params\":%zu",
               d->steps, d->seconds, d->final_train_loss, d->trainable_params, d->upper_params,
               d->total_params);
        printf(",\"train_eval_loss\":%.6f", d->last_train.loss);
        if (d->has_dev) {
            printf(",\"dev_loss\":%.6f,\"dev_metrics\":{", d->last_dev.loss);
            print_metrics(stdout, &d->last_dev.metrics, 1);
            printf("}");
        }
        printf("}\n");
        fflush(stdout);
        return;
    }
    fprintf(stderr, "done: %ld steps in %.1f s, final train loss %.4f", d->steps, d->seconds,
            d->final_train_loss);
    if (d->has_dev) {
        fprintf(stderr, "; dev loss %.4f", d->last_dev.loss);
        print_metrics(stderr, &d->last_dev.metrics, 0);
    }
    fprintf(stderr, "\n");
}

int cmd_train(int argc, char **argv) {
    TrainConfig c;
    train_config_defaults(&c);
    int json = 0;
    Option opts[] = {
        {"--model", OPT_STR, c.model, sizeof(c.model), "model directory or name on the asset path"},
        {"--task", OPT_STR, c.task, sizeof(c.task), "GLUE task: CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI"},
        {"--data", OPT_STR, c.data, sizeof(c.data), "task directory (none: found on the asset path)"},
        {"--method", OPT_STR, c.method, sizeof(c.method), "lora | dora | svd | adalora | bilora | bidora"},
        {"--rank", OPT_INT, &c.rank, 0, "adapter rank r (adalora: the initial rank)"},
        {"--alpha", OPT_FLOAT, &c.alpha, 0, "adapter scale s = alpha / r"},
        {"--lora-dropout", OPT_FLOAT, &c.lora_dropout, 0, "dropout on the adapter input"},
        {"--targets", OPT_STR, c.targets, sizeof(c.targets), "adapted linears: query,key,value,attention_output,intermediate,output"},
        {"--lambda", OPT_STR, c.lambda, sizeof(c.lambda), "svd forms' λ: auto (bilora softmax, else real) | real | softmax | sigmoid"},
        {"--lower-lr", OPT_FLOAT, &c.lower_lr, 0, "learning rate of the lower level (single-level methods: the only one)"},
        {"--lr", OPT_FLOAT, &c.lower_lr, 0, "same as --lower-lr"},
        {"--upper-lr", OPT_FLOAT, &c.upper_lr, 0, "learning rate of the upper level (bi-level methods)"},
        {"--lower-weight-decay", OPT_FLOAT, &c.lower_weight_decay, 0, "AdamW weight decay, lower level (not on biases)"},
        {"--weight-decay", OPT_FLOAT, &c.lower_weight_decay, 0, "same as --lower-weight-decay"},
        {"--upper-weight-decay", OPT_FLOAT, &c.upper_weight_decay, 0, "AdamW weight decay, upper level"},
        {"--warmup-ratio", OPT_FLOAT, &c.warmup_ratio, 0, "fraction of steps of linear warm-up, then linear decay"},
        {"--max-grad-norm", OPT_FLOAT, &c.max_grad_norm, 0, "gradient-norm clipping per level (0: off)"},
        {"--batch-size", OPT_INT, &c.batch_size, 0, "examples per step"},
        {"--max-seq-len", OPT_INT, &c.max_seq_len, 0, "tokens per example (longest-first truncation)"},
        {"--epochs", OPT_INT, &c.epochs, 0, "passes over the training set (bi-level: over D1)"},
        {"--steps", OPT_LONG, &c.steps, 0, "global steps (overrides --epochs when > 0)"},
        {"--eval-every", OPT_LONG, &c.eval_every, 0, "steps between evaluations (0: every epoch)"},
        {"--spectrum-every", OPT_LONG, &c.spectrum_every, 0, "steps between spectrum events (0: with evaluations)"},
        {"--eval-train-examples", OPT_INT, &c.eval_train_examples, 0, "training examples scored at each evaluation"},
        {"--overfit-batch", OPT_INT, &c.overfit_batch, 0, "train on the first N examples only (overfitting check)"},
        {"--seed", OPT_U64, &c.seed, 0, "seed of initialisation, split, data order and dropout"},
        {"--device", OPT_STR, c.device, sizeof(c.device), "cpu | auto"},
        {"--split-ratio", OPT_FLOAT, &c.split_ratio, 0, "bi-level: |D1| / |train|, D2 the rest"},
        {"--lower-steps", OPT_INT, &c.lower_steps, 0, "bi-level: T1 lower steps per global step"},
        {"--upper-steps", OPT_INT, &c.upper_steps, 0, "bi-level: T2 upper steps per global step"},
        {"--gamma1", OPT_FLOAT, &c.gamma1, 0, "weight of R1 = |PᵀP−I|² + |QQᵀ−I|² (svd forms)"},
        {"--gamma2", OPT_FLOAT, &c.gamma2, 0, "weight of R2 = entropy of sigmoid λ (upper level)"},
        {"--hypergrad", OPT_STR, c.hypergrad, sizeof(c.hypergrad), "first-order | darts | neumann"},
        {"--darts-radius", OPT_FLOAT, &c.darts_radius, 0, "finite-difference radius: ε = radius / |v|"},
        {"--darts-xi", OPT_FLOAT, &c.darts_xi, 0, "DARTS's factor ξ on the second-order term (0: none, as Betty)"},
        {"--neumann-steps", OPT_INT, &c.neumann_steps, 0, "neumann: K terms"},
        {"--neumann-alpha", OPT_FLOAT, &c.neumann_alpha, 0, "neumann: α"},
        {"--phase2-steps", OPT_LONG, &c.phase2_steps, 0, "bidora: steps of direction retraining with m fixed"},
        {"--phase2-lr", OPT_FLOAT, &c.phase2_lr, 0, "bidora: learning rate of phase 2"},
        {"--target-rank", OPT_INT, &c.target_rank, 0, "adalora: average rank kept at the end"},
        {"--tinit", OPT_FLOAT, &c.tinit, 0, "adalora: fraction of steps before pruning starts"},
        {"--tfinal", OPT_FLOAT, &c.tfinal, 0, "adalora: fraction of steps at the final budget"},
        {"--delta-t", OPT_INT, &c.delta_t, 0, "adalora: steps between budget reallocations"},
        {"--json", OPT_FLAG, &json, 0, "JSON lines on stdout instead of a progress bar"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));
    char err[2048];
    int rc = options_parse(opts, n, argc, argv, err, sizeof(err));
    if (rc == 1) {
        options_help(stdout, "usage: bilora train --model M --task T [flags]\nFine-tunes with LoRA-family adapters; bi-level methods split the training set into D1/D2.", opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora train: %s\n", err); return 2; }
    if (!c.model[0] || !c.task[0]) {
        fprintf(stderr, "bilora train: --model and --task are required (see --help)\n");
        return 2;
    }
    Out o = {.json = json, .tty = isatty(2)};
    TrainCallbacks cb = {.ctx = &o, .on_info = on_info, .on_step = on_step, .on_eval = on_eval,
                         .on_spectrum = on_spectrum, .on_done = on_done};
    if (train_run(&c, &cb, err, sizeof(err)) != 0) {
        if (o.tty) fprintf(stderr, "\n");
        if (json) {
            printf("{\"event\":\"error\",\"message\":\"");
            for (const char *p = err; *p; p++) {
                if (*p == '"' || *p == '\\') putchar('\\');
                putchar(*p);
            }
            printf("\"}\n");
        }
        fprintf(stderr, "bilora train: %s\n", err);
        return 1;
    }
    return 0;
}
