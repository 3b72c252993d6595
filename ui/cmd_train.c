/* `bilora train`: a headless run with JSON lines or a progress bar. */
#include "engine/train.h"
#include "sessions/session.h"
#include "ui/commands.h"
#include "ui/options.h"
#include "ui/train_output.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cmd_train(int argc, char **argv) {
    TrainConfig c;
    train_config_defaults(&c);
    int json = 0;
    char session[SESSION_NAME_MAX + 1] = "";
    long save_every = 0;
    Option opts[] = {
        {"--model", OPT_STR, c.model, sizeof(c.model), "model directory or name on the asset path"},
        {"--task", OPT_STR, c.task, sizeof(c.task), "GLUE task: CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE WNLI; or E2E (data-to-text, a gpt2 model)"},
        {"--data", OPT_STR, c.data, sizeof(c.data), "task directory (none: found on the asset path)"},
        {"--method", OPT_STR, c.method, sizeof(c.method), "lora | dora | svd | adalora | bilora | bidora"},
        {"--rank", OPT_INT, &c.rank, 0, "adapter rank r (adalora: the initial rank)"},
        {"--alpha", OPT_FLOAT, &c.alpha, 0, "adapter scale s = alpha / r"},
        {"--lora-dropout", OPT_FLOAT, &c.lora_dropout, 0, "dropout on the adapter input"},
        {"--targets", OPT_STR, c.targets, sizeof(c.targets), "adapted linears: query,key,value,attention_output,intermediate,output"},
        {"--lambda", OPT_STR, c.lambda, sizeof(c.lambda), "svd forms' λ: auto (bilora softmax, else real) | real | softmax | sigmoid"},
        {"--svd-init", OPT_STR, c.svd_init, sizeof(c.svd_init), "svd forms' start: adalora (P, Q ~ N(0, 0.02)) | lora (Q like LoRA's A, P = 0)"},
        {"--lower-lr", OPT_FLOAT, &c.lower_lr, 0, "learning rate of the lower level (single-level methods: the only one)"},
        {"--lr", OPT_FLOAT, &c.lower_lr, 0, "same as --lower-lr"},
        {"--upper-lr", OPT_FLOAT, &c.upper_lr, 0, "learning rate of the upper level (bi-level methods)"},
        {"--lower-weight-decay", OPT_FLOAT, &c.lower_weight_decay, 0, "AdamW weight decay, lower level (not on biases)"},
        {"--weight-decay", OPT_FLOAT, &c.lower_weight_decay, 0, "same as --lower-weight-decay"},
        {"--upper-weight-decay", OPT_FLOAT, &c.upper_weight_decay, 0, "AdamW weight decay, upper level"},
        {"--warmup-ratio", OPT_FLOAT, &c.warmup_ratio, 0, "fraction of steps of linear warm-up, then linear decay"},
        {"--max-grad-norm", OPT_FLOAT, &c.max_grad_norm, 0, "gradient-norm clipping per level (0: off)"},
        {"--batch-size", OPT_INT, &c.batch_size, 0, "examples per step"},
        {"--max-seq-len", OPT_INT, &c.max_seq_len, 0, "tokens per example (GLUE pairs: longest-first truncation; E2E: the reference is cut, and generation stops here)"},
        {"--epochs", OPT_INT, &c.epochs, 0, "passes over the training set (bi-level: over D1)"},
        {"--steps", OPT_LONG, &c.steps, 0, "global steps (overrides --epochs when > 0)"},
        {"--eval-every", OPT_LONG, &c.eval_every, 0, "steps between evaluations (0: every epoch)"},
        {"--spectrum-every", OPT_LONG, &c.spectrum_every, 0, "steps between spectrum events (0: with evaluations)"},
        {"--eval-train-examples", OPT_INT, &c.eval_train_examples, 0, "training examples scored at each evaluation"},
        {"--eval-generate", OPT_INT, &c.eval_generate, 0, "E2E: dev meaning representations generated (greedy) at each evaluation, scored by BLEU against all their references (0: none)"},
        {"--overfit-batch", OPT_INT, &c.overfit_batch, 0, "train on the first N examples only (overfitting check)"},
        {"--seed", OPT_U64, &c.seed, 0, "seed of initialisation, split, data order and dropout"},
        {"--device", OPT_STR, c.device, sizeof(c.device), "auto (CUDA when a device is present) | cpu | cuda"},
        {"--split-ratio", OPT_FLOAT, &c.split_ratio, 0, "bi-level: |D1| / |train|, D2 the rest"},
        {"--lower-steps", OPT_INT, &c.lower_steps, 0, "bi-level: T1 lower steps per global step"},
        {"--upper-steps", OPT_INT, &c.upper_steps, 0, "bi-level: T2 upper steps per global step"},
        {"--gamma1", OPT_FLOAT, &c.gamma1, 0, "weight of R1 = |PᵀP−I|² + |QQᵀ−I|² (svd forms)"},
        {"--gamma2", OPT_FLOAT, &c.gamma2, 0, "weight of R2 = entropy of sigmoid λ (upper level)"},
        {"--hypergrad", OPT_STR, c.hypergrad, sizeof(c.hypergrad), "first-order | darts | neumann"},
        {"--darts-radius", OPT_FLOAT, &c.darts_radius, 0, "finite-difference radius: ε = radius / |v|"},
        {"--darts-xi", OPT_FLOAT, &c.darts_xi, 0, "DARTS's factor ξ on the second-order term (0: no factor, i.e. 1, as Betty)"},
        {"--neumann-steps", OPT_INT, &c.neumann_steps, 0, "neumann: K terms"},
        {"--neumann-alpha", OPT_FLOAT, &c.neumann_alpha, 0, "neumann: α"},
        {"--phase2-steps", OPT_LONG, &c.phase2_steps, 0, "bidora: steps of direction retraining with m fixed"},
        {"--phase2-lr", OPT_FLOAT, &c.phase2_lr, 0, "bidora: learning rate of phase 2"},
        {"--target-rank", OPT_INT, &c.target_rank, 0, "adalora: average rank kept at the end"},
        {"--tinit", OPT_FLOAT, &c.tinit, 0, "adalora: fraction of steps before pruning starts"},
        {"--tfinal", OPT_FLOAT, &c.tfinal, 0, "adalora: fraction of steps at the final budget"},
        {"--delta-t", OPT_INT, &c.delta_t, 0, "adalora: steps between budget reallocations"},
        {"--json", OPT_FLAG, &json, 0, "JSON lines on stdout instead of a progress bar"},
        {"--session", OPT_STR, session, sizeof(session), "save the run as this session (bilora resume NAME continues it)"},
        {"--save-every", OPT_LONG, &save_every, 0, "with --session: steps between snapshots (0: at the end only)"},
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
    const char *canon = train_task_name(c.task); /* "sst2", "data/e2e": one spelling in sessions */
    if (canon) snprintf(c.task, sizeof(c.task), "%s", canon);
    if (save_every > 0 && !session[0]) {
        fprintf(stderr, "bilora train: --save-every %ld needs --session NAME (where to save)\n", save_every);
        return 2;
    }
    TrainOutput o = {.json = json, .tty = isatty(2)};
    TrainCallbacks cb = train_output_callbacks(&o);
    if (!session[0]) {
        if (train_run(&c, &cb, err, sizeof(err)) != 0) {
            train_output_error(&o, "train", err);
            return 1;
        }
        return 0;
    }
    session_catch_interrupts(); /* Ctrl-C saves at the step boundary, then stops */
    rc = session_train(&c, &cb, NULL, session, save_every, err, sizeof(err));
    if (rc == SESSION_INTERRUPTED) {
        train_output_info(&o, err);
        return 130;
    }
    if (rc != 0) {
        train_output_error(&o, "train", err);
        return 1;
    }
    return 0;
}
