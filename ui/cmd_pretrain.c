/* `bilora pretrain`: masked-LM pretraining of a small encoder from random
 * initialisation, headless, with a progress bar or JSON lines. */
#include "engine/pretrain.h"
#include "ui/commands.h"
#include "ui/options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int json;
    int tty;
    long last_line_step;
} Out;

static void json_string(const char *s) {
    putchar('"');
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch == '\n') printf("\\n");
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static void on_info(void *ctx, const char *msg) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"info\",\"message\":");
        json_string(msg);
        printf("}\n");
        fflush(stdout);
        return;
    }
    if (o->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s\n", msg);
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) { snprintf(buf, cap, "--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

static void on_step(void *ctx, const PretrainStep *s) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"step\",\"step\":%ld,\"total_steps\":%ld,\"loss\":%.6f,\"predicted\":%d,"
               "\"lr\":%.6g,\"grad_norm\":%.4f,\"tokens_per_s\":%.1f,\"elapsed_s\":%.2f,"
               "\"eta_s\":%.1f}\n",
               s->step, s->total_steps, s->loss, s->predicted, s->lr, s->grad_norm,
               s->tokens_per_s, s->elapsed_seconds, s->eta_seconds);
        fflush(stdout);
        return;
    }
    char eta[32];
    fmt_eta(eta, sizeof(eta), s->eta_seconds);
    int width = 30, filled = (int)(width * (double)s->step / s->total_steps);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    if (o->tty) {
        fprintf(stderr, "\r[%s] step %ld/%ld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   ", bar,
                s->step, s->total_steps, s->loss, s->lr, s->tokens_per_s, eta);
    } else if (s->step == 1 || s->step == s->total_steps ||
               s->step - o->last_line_step >= (s->total_steps >= 20 ? s->total_steps / 20 : 1)) {
        fprintf(stderr, "[%s] step %ld/%ld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s\n", bar,
                s->step, s->total_steps, s->loss, s->lr, s->tokens_per_s, eta);
        o->last_line_step = s->step;
    }
}

static void on_eval(void *ctx, const PretrainEval *e) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"eval\",\"step\":%ld,\"split\":\"heldout\",\"loss\":%.6f,"
               "\"predicted\":%ld,\"sequences\":%d}\n",
               e->step, e->loss, e->predicted, e->sequences);
        fflush(stdout);
        return;
    }
    if (o->tty) fprintf(stderr, "\r\033[K");
    /* "predicted": the masked tokens (MLM) or every next token (causal LM) */
    fprintf(stderr, "eval step %ld  held-out loss %.4f  (perplexity %.1f, %ld predicted tokens "
            "in %d sequences)\n", e->step, e->loss, exp(e->loss), e->predicted, e->sequences);
}

static void on_done(void *ctx, const PretrainDone *d) {
    Out *o = ctx;
    if (o->json) {
        printf("{\"event\":\"done\",\"steps\":%ld,\"stopped\":%s,\"seconds\":%.2f,"
               "\"train_loss\":%.6f,\"heldout_loss\":%.6f,\"params\":%zu,\"out\":",
               d->steps, d->stopped ? "true" : "false", d->seconds,
               isfinite(d->final_train_loss) ? d->final_train_loss : -1.0,
               isfinite(d->heldout_loss) ? d->heldout_loss : -1.0, d->params);
        json_string(d->out);
        printf("}\n");
        fflush(stdout);
        return;
    }
    if (o->tty) fprintf(stderr, "\r\033[K");
    if (d->stopped)
        fprintf(stderr, "stopped after step %ld (%.1f s); checkpoint in %s: run again with "
                "--resume to continue\n", d->steps, d->seconds, d->out);
    else
        fprintf(stderr, "done: %ld steps in %.1f s, final train loss %.4f, held-out loss %.4f; "
                "model in %s\n", d->steps, d->seconds, d->final_train_loss, d->heldout_loss,
                d->out);
}

int cmd_pretrain(int argc, char **argv) {
    PretrainConfig c;
    pretrain_config_defaults(&c);
    int json = 0;
    char corpus_help[8] = "";
    Option opts[] = {
        {"--arch", OPT_STR, c.arch, sizeof(c.arch), "bert | roberta (masked LM) | gpt2 (causal LM)"},
        {"--size", OPT_STR, c.size, sizeof(c.size), "tiny (2x128) | mini (4x256) | small (4x512)"},
        {"--config", OPT_STR, c.config, sizeof(c.config), "config.json (file or directory) instead of --size"},
        {"--tokenizer", OPT_STR, c.tokenizer, sizeof(c.tokenizer), "tokenizer directory or model name on the asset path"},
        {"--corpus", OPT_STR, corpus_help, sizeof(corpus_help), "text files, glue/TASK and/or e2e (train splits only); several may follow"},
        {"--out", OPT_STR, c.out, sizeof(c.out), "model directory to write (checkpoints go to OUT.partial/)"},
        {"--steps", OPT_LONG, &c.steps, 0, "optimizer steps"},
        {"--batch-size", OPT_INT, &c.batch_size, 0, "sequences per step"},
        {"--seq-len", OPT_INT, &c.seq_len, 0, "tokens per packed sequence, specials included"},
        {"--lr", OPT_FLOAT, &c.lr, 0, "peak learning rate (AdamW)"},
        {"--warmup-ratio", OPT_FLOAT, &c.warmup_ratio, 0, "fraction of steps of linear warm-up, then linear decay"},
        {"--weight-decay", OPT_FLOAT, &c.weight_decay, 0, "AdamW weight decay (not on biases, LayerNorm, embeddings)"},
        {"--max-grad-norm", OPT_FLOAT, &c.max_grad_norm, 0, "gradient-norm clipping (0: off)"},
        {"--mask-prob", OPT_FLOAT, &c.mask_prob, 0, "masked LM: fraction of tokens predicted (80% [MASK], 10% random, 10% kept); gpt2 predicts every next token"},
        {"--holdout-ratio", OPT_FLOAT, &c.holdout_ratio, 0, "fraction of sequences held out for the held-out loss"},
        {"--dropout", OPT_FLOAT, &c.dropout, 0, "hidden and attention dropout (written to config.json)"},
        {"--seed", OPT_U64, &c.seed, 0, "seed of initialisation, held-out split, data order, masks, dropout"},
        {"--eval-every", OPT_LONG, &c.eval_every, 0, "steps between held-out evaluations (0: steps/10)"},
        {"--checkpoint-every", OPT_LONG, &c.checkpoint_every, 0, "steps between checkpoints in OUT.partial/ (0: none)"},
        {"--stop-after", OPT_LONG, &c.stop_after, 0, "stop after this step with a checkpoint (continue with --resume)"},
        {"--resume", OPT_FLAG, &c.resume, 0, "continue from the checkpoint in OUT.partial/"},
        {"--overwrite", OPT_FLAG, &c.overwrite, 0, "replace an existing OUT"},
        {"--device", OPT_STR, c.device, sizeof(c.device), "auto (CUDA when a device is present) | cpu | cuda"},
        {"--json", OPT_FLAG, &json, 0, "JSON lines on stdout instead of a progress bar"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));

    /* --corpus takes every following argument up to the next flag, which the
     * table parser cannot express: collect those here, parse the rest. */
    char **rest = malloc(sizeof(char *) * (argc > 0 ? argc : 1));
    if (!rest) { fprintf(stderr, "bilora pretrain: out of memory\n"); return 1; }
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        int many = 0;
        if (strcmp(argv[i], "--corpus") == 0) many = 1;
        else if (strncmp(argv[i], "--corpus=", 9) == 0) v = argv[i] + 9;
        else { rest[nrest++] = argv[i]; continue; }
        if (many && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            fprintf(stderr, "bilora pretrain: --corpus needs at least one file or glue/TASK\n");
            free(rest);
            return 2;
        }
        while (v || (many && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)) {
            const char *s = v ? v : argv[++i];
            v = NULL;
            if (c.n_corpus == PRETRAIN_MAX_CORPUS || strlen(s) >= sizeof(c.corpus[0])) {
                fprintf(stderr, "bilora pretrain: --corpus: at most %d entries of %zu characters\n",
                        PRETRAIN_MAX_CORPUS, sizeof(c.corpus[0]) - 1);
                free(rest);
                return 2;
            }
            snprintf(c.corpus[c.n_corpus++], sizeof(c.corpus[0]), "%s", s);
        }
    }
    char err[4096];
    int rc = options_parse(opts, n, nrest, rest, err, sizeof(err));
    free(rest);
    if (rc == 1) {
        options_help(stdout,
                     "usage: bilora pretrain --tokenizer DIR --corpus SRC... --steps N --out DIR\n"
                     "                       [--arch bert|roberta|gpt2] [--size tiny|mini|small | "
                     "--config FILE] [flags]\n\n"
                     "Pretraining from random initialisation: masked LM for the encoders (BERT's\n"
                     "15%, 80/10/10), causal LM (next token) for gpt2. Writes a Hugging Face model\n"
                     "directory (BertForMaskedLM / RobertaForMaskedLM / GPT2LMHeadModel).",
                     opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora pretrain: %s\n", err); return 2; }
    const char *missing = !c.tokenizer[0] ? "--tokenizer DIR (whose vocabulary to use)"
                          : c.n_corpus == 0  ? "--corpus (glue, e2e, or a text file)"
                          : !c.out[0]        ? "--out DIR (where the model is written)"
                          : NULL;
    if (missing) {
        fprintf(stderr, "bilora pretrain: %s is required (see --help)\n", missing);
        return 2;
    }
    if (c.steps <= 0) {
        fprintf(stderr, "bilora pretrain: --steps %ld: expected a step count > 0\n", c.steps);
        return 2;
    }
    /* --config decides the architecture unless --arch is given too */
    int arch_given = 0;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--arch") == 0 || strncmp(argv[i], "--arch=", 7) == 0) arch_given = 1;
    if (c.config[0] && !arch_given) c.arch[0] = 0;

    Out o = {.json = json, .tty = isatty(2)};
    PretrainCallbacks cb = {.ctx = &o, .on_info = on_info, .on_step = on_step, .on_eval = on_eval,
                            .on_done = on_done};
    if (pretrain_run(&c, &cb, err, sizeof(err)) != 0) {
        if (o.tty && !json) fprintf(stderr, "\r\033[K");
        if (json) {
            printf("{\"event\":\"error\",\"message\":");
            json_string(err);
            printf("}\n");
        }
        fprintf(stderr, "bilora pretrain: %s\n", err);
        return 1;
    }
    return 0;
}
