/* `bilora train`: a headless run with JSON lines or a progress bar. */
#include "engine/train.h"
#include "ui/commands.h"
#include "ui/options.h"

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
        printf("{\"event\":\"step\",\"step\":%ld,\"epoch\":%.4f,\"loss\":%.6f,\"lr\":%.6g,"
               "\"grad_norm\":%.4f,\"examples_per_s\":%.1f}\n",
               s->step, s->epoch, s->loss, s->lr, s->grad_norm, s->examples_per_s);
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
        fprintf(stderr, "\r[%s] step %ld/%ld  epoch %.2f  loss %.4f  lr %.2e  %.1f ex/s  ETA %s   ", bar,
                s->step, s->total_steps, s->epoch, s->loss, s->lr, s->examples_per_s, eta);
    } else if (s->step == 1 || s->step == s->total_steps ||
               s->step - o->last_line_step >= (s->total_steps >= 20 ? s->total_steps / 20 : 1)) {
        fprintf(stderr, "[%s] step %ld/%ld  epoch %.2f  loss %.4f  lr %.2e  %.1f ex/s  ETA %s\n", bar,
                s->step, s->total_steps, s->epoch, s->loss, s->lr, s->examples_per_s, eta);
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

static void on_done(void *ctx, const DoneInfo *d) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"done\",\"steps\":%ld,\"seconds\":%.2f,\"train_loss\":%.6f,"
               "\"trainable_params\":%zu,\"total_params\":%zu",
               d->steps, d->seconds, d->final_train_loss, d->trainable_params, d->total_params);
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
        {"--data", OPT_STR, c.data, sizeof(c.data), "task directory (default: found on the asset path)"},
        {"--method", OPT_STR, c.method, sizeof(c.method), "adapter method: lora"},
        {"--rank", OPT_INT, &c.rank, 0, "adapter rank r"},
        {"--alpha", OPT_FLOAT, &c.alpha, 0, "LoRA alpha (scale = alpha / r)"},
        {"--lora-dropout", OPT_FLOAT, &c.lora_dropout, 0, "dropout on the adapter input"},
        {"--targets", OPT_STR, c.targets, sizeof(c.targets), "adapted linears: query,key,value,attention_output,intermediate,output"},
        {"--lr", OPT_FLOAT, &c.lr, 0, "peak learning rate (AdamW)"},
        {"--weight-decay", OPT_FLOAT, &c.weight_decay, 0, "AdamW weight decay (not on biases)"},
        {"--warmup-ratio", OPT_FLOAT, &c.warmup_ratio, 0, "fraction of steps of linear warm-up, then linear decay"},
        {"--max-grad-norm", OPT_FLOAT, &c.max_grad_norm, 0, "gradient-norm clipping (0: off)"},
        {"--batch-size", OPT_INT, &c.batch_size, 0, "examples per step"},
        {"--max-seq-len", OPT_INT, &c.max_seq_len, 0, "tokens per example (longest-first truncation)"},
        {"--epochs", OPT_INT, &c.epochs, 0, "passes over the training set"},
        {"--steps", OPT_LONG, &c.steps, 0, "optimizer steps (overrides --epochs when > 0)"},
        {"--eval-every", OPT_LONG, &c.eval_every, 0, "steps between evaluations (0: every epoch)"},
        {"--eval-train-examples", OPT_INT, &c.eval_train_examples, 0, "training examples scored at each evaluation"},
        {"--overfit-batch", OPT_INT, &c.overfit_batch, 0, "train on the first N examples only (overfitting check)"},
        {"--seed", OPT_U64, &c.seed, 0, "seed of initialisation, data order and dropout"},
        {"--device", OPT_STR, c.device, sizeof(c.device), "cpu | auto"},
        {"--json", OPT_FLAG, &json, 0, "JSON lines on stdout instead of a progress bar"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));
    char err[2048];
    int rc = options_parse(opts, n, argc, argv, err, sizeof(err));
    if (rc == 1) {
        options_help(stdout, "usage: bilora train --model M --task T [flags]", opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora train: %s\n", err); return 2; }
    if (!c.model[0] || !c.task[0]) {
        fprintf(stderr, "bilora train: --model and --task are required (see --help)\n");
        return 2;
    }
    Out o = {.json = json, .tty = isatty(2)};
    TrainCallbacks cb = {.ctx = &o, .on_info = on_info, .on_step = on_step, .on_eval = on_eval,
                         .on_done = on_done};
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
