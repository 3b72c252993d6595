/* `bilora tokenize`, `bilora forward` and `bilora generate`: line-oriented
 * tools over stdin, also used to compare with the reference implementations. */
#include "datasets/tokenizer.h"
#include "engine/assets.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/safetensors.h"
#include "engine/train.h"
#include "kernels/backend.h"
#include "sessions/session.h"
#include "ui/commands.h"
#include "ui/options.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads one line from f into *buf (growing it), without the '\n' or '\r'.
 * Returns the length, or -1 at end of input. */
static long read_line(FILE *f, char **buf, size_t *cap) {
    ssize_t n = getline(buf, cap, f);
    if (n < 0) return -1;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r')) (*buf)[--n] = 0;
    return n;
}

/* Splits a line at its tab into a pair when pair is set (no tab: one
 * text). -1 when the line has more than one tab: a pair is two texts, and
 * joining the rest into the second would be silent garbage. */
static int split_pair(char *line, int pair, const char **a, const char **b) {
    *a = line;
    *b = NULL;
    if (!pair) return 0;
    char *tab = strchr(line, '\t');
    if (tab) {
        if (strchr(tab + 1, '\t')) return -1;
        *tab = 0;
        *b = tab + 1;
    }
    return 0;
}

/* A model name or directory -> its directory, config (mc may be NULL) and
 * tokenizer. */
static int open_tokenizer(const char *model, Tokenizer **tok, char *dir, size_t dircap,
                          ModelConfig *mc, char *err, size_t errlen) {
    ModelConfig own;
    if (!mc) mc = &own;
    if (assets_find_model(model, dir, dircap, err, errlen) != 0) return -1;
    if (model_config_load(mc, dir, err, errlen) != 0) return -1;
    return tokenizer_load(tok, dir, mc->model_type, err, errlen);
}

int cmd_tokenize(int argc, char **argv) {
    char model[1024] = "";
    int pair = 0, max_len = 0;
    Option opts[] = {
        {"--model", OPT_STR, model, sizeof(model), "model directory or name (its tokenizer files are used)"},
        {"--pair", OPT_FLAG, &pair, 0, "each line is two tab-separated texts"},
        {"--max-seq-len", OPT_INT, &max_len, 0, "truncate longest-first to this many tokens (0: no limit)"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));
    char err[2048];
    int rc = options_parse(opts, n, argc, argv, err, sizeof(err));
    if (rc == 1) {
        options_help(stdout, "usage: bilora tokenize --model M [--pair] < lines\n"
                             "Prints one line of space-separated ids per input line, special tokens included.",
                     opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora tokenize: %s\n", err); return 2; }
    if (!model[0]) { fprintf(stderr, "bilora tokenize: --model is required\n"); return 2; }
    if (max_len < 0) {
        fprintf(stderr, "bilora tokenize: --max-seq-len %d: expected a token count >= 0 (0: no limit)\n", max_len);
        return 2;
    }
    Tokenizer *tok;
    char dir[4096];
    if (open_tokenizer(model, &tok, dir, sizeof(dir), NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora tokenize: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int status = 0;
    while (read_line(stdin, &line, &cap) >= 0) {
        lineno++;
        const char *a, *b;
        if (split_pair(line, pair, &a, &b) != 0) {
            fprintf(stderr, "bilora tokenize: stdin line %ld: expected at most one tab (two texts), found more\n",
                    lineno);
            status = 1;
            break;
        }
        int32_t *ids, *types;
        int len;
        if (tokenizer_encode(tok, a, b, max_len, &ids, &types, &len, err, sizeof(err)) != 0) {
            fprintf(stderr, "bilora tokenize: stdin line %ld: %s\n", lineno, err);
            status = 1;
            break;
        }
        for (int i = 0; i < len; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        free(ids);
        free(types);
    }
    free(line);
    tokenizer_free(tok);
    return status;
}

int cmd_forward(int argc, char **argv) {
    char model[1024] = "", out[4096] = "";
    int max_len = 512;
    Option opts[] = {
        {"--model", OPT_STR, model, sizeof(model), "model directory or name"},
        {"--out", OPT_STR, out, sizeof(out), "safetensors file to write"},
        {"--max-seq-len", OPT_INT, &max_len, 0, "truncate longest-first to this many tokens"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));
    char err[2048];
    int rc = options_parse(opts, n, argc, argv, err, sizeof(err));
    if (rc == 1) {
        options_help(stdout, "usage: bilora forward --model M --out FILE < lines\n"
                             "Runs the base model (encoder or decoder; no adapter, eval mode) on each stdin line (a tab\n"
                             "makes a sentence pair) and writes one fp32 tensor hidden.<i> [tokens, hidden]\n"
                             "per line: the last hidden states.",
                     opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora forward: %s\n", err); return 2; }
    if (!model[0] || !out[0]) { fprintf(stderr, "bilora forward: --model and --out are required\n"); return 2; }
    if (max_len < 1) {
        fprintf(stderr, "bilora forward: --max-seq-len %d: expected a token count >= 1\n", max_len);
        return 2;
    }
    Tokenizer *tok;
    char dir[4096];
    if (open_tokenizer(model, &tok, dir, sizeof(dir), NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora forward: %s\n", err);
        return 1;
    }
    /* tokenize everything first: the model is sized for the longest line */
    int cap_lines = 0, n_lines = 0, longest = 1;
    int32_t **ids = NULL, **types = NULL;
    int *lens = NULL;
    char *line = NULL;
    size_t lcap = 0;
    int status = 0;
    while (read_line(stdin, &line, &lcap) >= 0) {
        if (n_lines == cap_lines) {
            cap_lines = cap_lines ? cap_lines * 2 : 64;
            ids = realloc(ids, sizeof(*ids) * cap_lines);
            types = realloc(types, sizeof(*types) * cap_lines);
            lens = realloc(lens, sizeof(*lens) * cap_lines);
            if (!ids || !types || !lens) { fprintf(stderr, "bilora forward: out of memory\n"); return 1; }
        }
        const char *a, *b;
        if (split_pair(line, 1, &a, &b) != 0) {
            fprintf(stderr, "bilora forward: stdin line %d: expected at most one tab (two texts), found more\n",
                    n_lines + 1);
            status = 1;
            break;
        }
        if (tokenizer_encode(tok, a, b, max_len, &ids[n_lines], &types[n_lines], &lens[n_lines], err,
                             sizeof(err)) != 0) {
            fprintf(stderr, "bilora forward: stdin line %d: %s\n", n_lines + 1, err);
            status = 1;
            break;
        }
        if (lens[n_lines] > longest) longest = lens[n_lines];
        n_lines++;
    }
    free(line);
    Model *m = NULL;
    ModelOptions mo = {.model_dir = dir, .max_batch = 1, .max_seq = longest};
    if (status == 0 && model_load(&m, backend_cpu(), &mo, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora forward: %s\n", err);
        status = 1;
    }
    StWriteTensor *ts = calloc(n_lines ? n_lines : 1, sizeof(*ts));
    char (*names)[32] = calloc(n_lines ? n_lines : 1, 32);
    float **hidden = calloc(n_lines ? n_lines : 1, sizeof(float *));
    int C = m ? m->cfg.hidden_size : 0;
    for (int i = 0; i < n_lines && status == 0; i++) {
        Batch bt = {.B = 1, .T = lens[i], .ids = ids[i], .type_ids = types[i]};
        if (model_forward(m, &bt, 0, 0, err, sizeof(err)) != 0) {
            fprintf(stderr, "bilora forward: line %d: %s\n", i + 1, err);
            status = 1;
            break;
        }
        hidden[i] = malloc(sizeof(float) * (size_t)lens[i] * C);
        if (!hidden[i]) { status = 1; break; }
        m->be->download(hidden[i], model_hidden(m), sizeof(float) * (size_t)lens[i] * C);
        snprintf(names[i], 32, "hidden.%d", i);
        ts[i] = (StWriteTensor){.name = names[i], .data = hidden[i], .ndim = 2,
                                .shape = {lens[i], C}};
    }
    if (status == 0) {
        const char *meta[] = {"model", dir, "format", "bilora forward: last hidden states", NULL};
        if (st_write_f32(out, ts, n_lines, meta, err, sizeof(err)) != 0) {
            fprintf(stderr, "bilora forward: %s\n", err);
            status = 1;
        } else {
            fprintf(stderr, "bilora forward: %d line(s), hidden %d, written to %s\n", n_lines, C, out);
        }
    }
    for (int i = 0; i < n_lines; i++) {
        free(ids[i]);
        free(types[i]);
        free(hidden[i]);
    }
    free(ids); free(types); free(lens); free(ts); free(names); free(hidden);
    model_free(m);
    tokenizer_free(tok);
    return status;
}

static void print_model(const char *name, const char *dir, void *ctx) {
    int names_only = *(int *)ctx;
    ModelConfig mc;
    char err[512];
    if (names_only) {
        /* the encoders: scripts pick the default base model from this list */
        if (model_config_load(&mc, dir, err, sizeof(err)) == 0 &&
            (!strcmp(mc.model_type, "bert") || !strcmp(mc.model_type, "roberta")))
            printf("%s\n", name);
        return;
    }
    if (model_config_load(&mc, dir, err, sizeof(err)) == 0)
        printf("  %-28s %-8s %2d layers, hidden %4d  %s\n", name, mc.model_type,
               mc.num_hidden_layers, mc.hidden_size, dir);
    else
        printf("  %-28s (unreadable config: %s)\n", name, err);
}

int cmd_models(int argc, char **argv) {
    int names = 0;
    Option opts[] = {
        {"--names", OPT_FLAG, &names, 0, "print only the names of the models train can fine-tune, one per line"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));
    char err[1024];
    int rc = options_parse(opts, n, argc, argv, err, sizeof(err));
    if (rc == 1) {
        options_help(stdout, "usage: bilora models [--names]\nLists base models (config.json + "
                             "model.safetensors) found on the asset search path.", opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora models: %s\n", err); return 2; }
    if (!names) printf("models on the asset search path:\n");
    int count = assets_list_models(print_model, &names);
    if (!names && count == 0) {
        const char *a = getenv("BILORA_ASSETS"), *h = getenv("BILORA_HOME"), *home = getenv("HOME");
        printf("  (none)\nlooked in: BILORA_ASSETS=%s (each root's models/), %s/models, and the "
               "Hugging Face cache %s/.cache/huggingface/hub\n",
               a && *a ? a : "(unset)", h && *h ? h : "~/.cache/bilora",
               home ? home : "~");
    }
    return 0;
}

/* bilora generate: continue each stdin line with a gpt2 language model. */
/* generate --session NAME: the saved E2E run's model with its adapters,
 * each stdin line a meaning representation; one output line each. */
static int generate_from_session(const char *name, int json) {
    char err[2048];
    Run *r;
    if (session_load(NULL, name, NULL, 0, NULL, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora generate: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int status = 0, n = 0;
    while (status == 0 && read_line(stdin, &line, &cap) >= 0) {
        n++;
        char *text;
        if (run_generate(r, line, &text, err, sizeof(err)) != 0) {
            fprintf(stderr, "bilora generate: stdin line %d: %s\n", n, err);
            status = 1;
            break;
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", line);
            cJSON_AddStringToObject(o, "text", text);
            char *s = cJSON_PrintUnformatted(o);
            printf("%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(o);
        } else {
            printf("%s\n", text); /* one line: control characters are spaces */
        }
        fflush(stdout);
        free(text);
    }
    free(line);
    run_free(r);
    return status;
}

int cmd_generate(int argc, char **argv) {
    char model[1024] = "", device[16] = "cpu", session[256] = "";
    int max_new = 40, top_k = 0, json = 0;
    float temperature = 0.0f;
    uint64_t seed = 42;
    Option opts[] = {
        {"--model", OPT_STR, model, sizeof(model), "gpt2 model directory or name"},
        {"--session", OPT_STR, session, sizeof(session), "a saved E2E session instead: its model and adapters, each line a meaning representation, greedy up to the run's sequence length"},
        {"--max-new-tokens", OPT_INT, &max_new, 0, "tokens to add to each prompt at most"},
        {"--temperature", OPT_FLOAT, &temperature, 0, "0: greedy; > 0: sample softmax(logits / T)"},
        {"--top-k", OPT_INT, &top_k, 0, "sampling: only the k most likely tokens (0: all)"},
        {"--seed", OPT_U64, &seed, 0, "sampling seed"},
        {"--device", OPT_STR, device, sizeof(device), "auto | cpu | cuda"},
        {"--json", OPT_FLAG, &json, 0, "a JSON object per prompt: prompt, text, ids"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));
    char err[2048];
    int rc = options_parse(opts, n, argc, argv, err, sizeof(err));
    if (rc == 1) {
        options_help(stdout, "usage: bilora generate --model M [flags] < prompts\n"
                             "Continues each stdin line with a gpt2 language model (the tied LM head on\n"
                             "the last token): greedy by default, sampled with --temperature. Prints\n"
                             "the continuation of each line on its own line (newlines as \\n).",
                     opts, n);
        return 0;
    }
    if (rc < 0) { fprintf(stderr, "bilora generate: %s\n", err); return 2; }
    if (session[0] && model[0]) {
        fprintf(stderr, "bilora generate: give --model or --session, not both\n");
        return 2;
    }
    if (session[0]) return generate_from_session(session, json);
    if (!model[0]) { fprintf(stderr, "bilora generate: --model (or --session) is required\n"); return 2; }
    if (max_new < 1 || temperature < 0.0f || top_k < 0) {
        fprintf(stderr, "bilora generate: need --max-new-tokens >= 1, --temperature >= 0, --top-k >= 0\n");
        return 2;
    }
    char dir[4096];
    ModelConfig mc;
    Tokenizer *tok;
    if (open_tokenizer(model, &tok, dir, sizeof(dir), &mc, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora generate: %s\n", err);
        return 1;
    }
    if (strcmp(mc.model_type, "gpt2") != 0) {
        fprintf(stderr, "bilora generate: %s is a %s encoder; generation needs a gpt2 model\n", dir,
                mc.model_type);
        tokenizer_free(tok);
        return 1;
    }
    const Backend *be = backend_select(device, err, sizeof(err));
    if (!be) { fprintf(stderr, "bilora generate: %s\n", err); tokenizer_free(tok); return 1; }
    /* every prompt first: the model's activations are sized for the longest
     * prompt plus the new tokens, not for all n_positions */
    char *line = NULL;
    size_t cap = 0;
    int status = 0, n_lines = 0, cap_lines = 0, longest = 1;
    char **texts = NULL;
    int32_t **ids = NULL;
    int *lens = NULL;
    while (status == 0 && read_line(stdin, &line, &cap) >= 0) {
        if (n_lines == cap_lines) {
            cap_lines = cap_lines ? 2 * cap_lines : 16;
            texts = realloc(texts, sizeof(*texts) * cap_lines);
            ids = realloc(ids, sizeof(*ids) * cap_lines);
            lens = realloc(lens, sizeof(*lens) * cap_lines);
            if (!texts || !ids || !lens) { fprintf(stderr, "bilora generate: out of memory\n"); return 1; }
        }
        int32_t *types;
        if (tokenizer_encode(tok, line, NULL, 0, &ids[n_lines], &types, &lens[n_lines], err,
                             sizeof(err)) != 0) {
            fprintf(stderr, "bilora generate: stdin line %d: %s\n", n_lines + 1, err);
            status = 1;
            break;
        }
        free(types);
        if (lens[n_lines] == 0) { /* an empty line: generate from <|endoftext|>, GPT-2's start token */
            int32_t *one = realloc(ids[n_lines], sizeof(int32_t));
            if (!one) { fprintf(stderr, "bilora generate: out of memory\n"); return 1; }
            one[0] = tokenizer_sep_id(tok);
            ids[n_lines] = one;
            lens[n_lines] = 1;
        }
        if (lens[n_lines] + max_new > mc.max_position_embeddings) {
            fprintf(stderr, "bilora generate: stdin line %d: %d prompt tokens + %d new exceed the "
                    "model's %d positions\n", n_lines + 1, lens[n_lines], max_new,
                    mc.max_position_embeddings);
            free(ids[n_lines]);
            status = 1;
            break;
        }
        texts[n_lines] = strdup(line);
        if (lens[n_lines] > longest) longest = lens[n_lines];
        n_lines++;
    }
    free(line);
    Model *m = NULL;
    ModelOptions mo = {.model_dir = dir, .max_batch = 1, .max_seq = longest + max_new};
    if (status == 0 && model_load(&m, be, &mo, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora generate: %s\n", err);
        status = 1;
    }
    GenerateOptions go = {.max_new = max_new, .temperature = temperature, .top_k = top_k,
                          .seed = seed, .eos_id = tokenizer_sep_id(tok)};
    for (int i = 0; i < n_lines && status == 0; i++) {
        int32_t *gen = NULL;
        int ng = 0;
        if (lm_generate(m, ids[i], lens[i], &go, &gen, &ng, err, sizeof(err)) != 0) {
            fprintf(stderr, "bilora generate: stdin line %d: %s\n", i + 1, err);
            status = 1;
            break;
        }
        char *text = tokenizer_decode(tok, gen, ng, 1, err, sizeof(err));
        if (!text) {
            fprintf(stderr, "bilora generate: stdin line %d: %s\n", i + 1, err);
            free(gen);
            status = 1;
            break;
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", texts[i]);
            cJSON_AddStringToObject(o, "text", text);
            cJSON *a = cJSON_AddArrayToObject(o, "ids");
            for (int k = 0; k < ng; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(gen[k]));
            char *s = cJSON_PrintUnformatted(o);
            printf("%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(o);
        } else {
            for (const char *c = text; *c; c++) {
                if (*c == '\n') fputs("\\n", stdout);
                else putchar(*c);
            }
            putchar('\n');
        }
        fflush(stdout);
        free(text);
        free(gen);
    }
    for (int i = 0; i < n_lines; i++) { free(texts[i]); free(ids[i]); }
    free(texts);
    free(ids);
    free(lens);
    model_free(m);
    tokenizer_free(tok);
    return status;
}
