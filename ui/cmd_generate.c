/* bilora generate: continue each stdin line with a gpt2 language model. */
#include "datasets/tokenizer.h"
#include "engine/assets.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "kernels/backend.h"
#include "ui/commands.h"
#include "ui/options.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_generate(int argc, char **argv) {
    char model[1024] = "", device[16] = "cpu";
    int max_new = 40, top_k = 0, json = 0;
    float temperature = 0.0f;
    uint64_t seed = 42;
    Option opts[] = {
        {"--model", OPT_STR, model, sizeof(model), "gpt2 model directory or name"},
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
    if (!model[0]) { fprintf(stderr, "bilora generate: --model is required\n"); return 2; }
    if (max_new < 1 || temperature < 0.0f || top_k < 0) {
        fprintf(stderr, "bilora generate: need --max-new-tokens >= 1, --temperature >= 0, --top-k >= 0\n");
        return 2;
    }
    char dir[4096];
    ModelConfig mc;
    if (assets_find_model(model, dir, sizeof(dir), err, sizeof(err)) != 0 ||
        model_config_load(&mc, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora generate: %s\n", err);
        return 1;
    }
    if (strcmp(mc.model_type, "gpt2") != 0) {
        fprintf(stderr, "bilora generate: %s is a %s encoder; generation needs a gpt2 model\n", dir,
                mc.model_type);
        return 1;
    }
    Tokenizer *tok;
    if (tokenizer_load(&tok, dir, mc.model_type, err, sizeof(err)) != 0) {
        fprintf(stderr, "bilora generate: %s\n", err);
        return 1;
    }
    const Backend *be = backend_select(device, err, sizeof(err));
    if (!be) { fprintf(stderr, "bilora generate: %s\n", err); tokenizer_free(tok); return 1; }
    /* every prompt first: the model's activations are sized for the longest
     * prompt plus the new tokens, not for all n_positions */
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0, n_lines = 0, cap_lines = 0, longest = 1;
    char **texts = NULL;
    int32_t **ids = NULL;
    int *lens = NULL;
    while (status == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
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
