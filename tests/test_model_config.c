/* Tests for engine/model_config: every real config under $BILORA_ASSETS
 * with its known values, model_type inference for old configs, unsupported
 * types, missing and mistyped fields, and save -> load (and save ->
 * transformers.AutoConfig when the project's Python venv is present). */
#include "engine/model_config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", path, e->d_name);
                rm_rf(p);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static char tmpdir[256];
/* Working directory at start (the repository root under the test runner),
 * restored after tests that chdir, and used to find the venv. */
static char start_cwd[4096];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bilora_cfg_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) { rm_rf(tmpdir); }

/* Creates tmpdir/<sub> (parents included) and writes config.json there;
 * returns the directory in dir. */
static void make_config(const char *sub, const char *json, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/%s", tmpdir, sub);
    char p[4096];
    for (char *s = dir + strlen(tmpdir) + 1; (s = strchr(s, '/')); s++) {
        snprintf(p, sizeof p, "%.*s", (int)(s - dir), dir);
        mkdir(p, 0755);
    }
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
}

/* BILORA_ASSETS root that has models/<name>/config.json. 0: variable unset;
 * 1: found; -1: set but missing. */
static int asset_model(const char *name, char *out, size_t cap) {
    const char *env = getenv("BILORA_ASSETS");
    if (!env || !*env) return 0;
    char *copy = strdup(env), *save = NULL;
    int found = -1;
    for (char *r = strtok_r(copy, ":", &save); r; r = strtok_r(NULL, ":", &save)) {
        char p[4096];
        snprintf(p, sizeof p, "%s/models/%s/config.json", r, name);
        if (access(p, R_OK) == 0) {
            snprintf(out, cap, "%s/models/%s", r, name);
            found = 1;
            break;
        }
    }
    free(copy);
    return found;
}

typedef struct {
    const char *dir;
    const char *type;
    int V, H, L, A, I, P, T, pad, labels;
    float eps;
    const char *act;
} Known;

/* Values from the config files themselves (see shared/models/README.md). */
static const Known KNOWN[] = {
    {"bert-tiny", "bert", 30522, 128, 2, 2, 512, 512, 2, 0, 0, 1e-12f, "gelu"},
    {"bert-mini", "bert", 30522, 256, 4, 4, 1024, 512, 2, 0, 0, 1e-12f, "gelu"},
    /* 2019 file: no model_type, no pad_token_id, num_labels 2. */
    {"roberta-base", "roberta", 50265, 768, 12, 12, 3072, 514, 1, 1, 2, 1e-5f, "gelu"},
    {"roberta-large", "roberta", 50265, 1024, 24, 16, 4096, 514, 1, 1, 0, 1e-5f, "gelu"},
    {"gpt2", "gpt2", 50257, 768, 12, 12, 3072, 1024, 0, -1, 0, 1e-5f, "gelu_new"},
    {"gpt2-medium", "gpt2", 50257, 1024, 24, 16, 4096, 1024, 0, -1, 0, 1e-5f, "gelu_new"},
    {"gpt2-large", "gpt2", 50257, 1280, 36, 20, 5120, 1024, 0, -1, 0, 1e-5f, "gelu_new"},
};

START_TEST(test_real_configs) {
    const Known *k = &KNOWN[_i];
    char dir[4096], err[512];
    int r = asset_model(k->dir, dir, sizeof dir);
    if (r == 0) {
        fprintf(stderr, "test_real_configs: BILORA_ASSETS not set, %s skipped\n", k->dir);
        return;
    }
    ck_assert_msg(r == 1, "BILORA_ASSETS is set but models/%s/config.json is in none of its roots",
                  k->dir);
    ModelConfig c;
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s: %s", k->dir, err);
    ck_assert_str_eq(c.model_type, k->type);
    ck_assert_int_eq(c.vocab_size, k->V);
    ck_assert_int_eq(c.hidden_size, k->H);
    ck_assert_int_eq(c.num_hidden_layers, k->L);
    ck_assert_int_eq(c.num_attention_heads, k->A);
    ck_assert_int_eq(c.intermediate_size, k->I);
    ck_assert_int_eq(c.max_position_embeddings, k->P);
    ck_assert_int_eq(c.type_vocab_size, k->T);
    ck_assert_int_eq(c.pad_token_id, k->pad);
    ck_assert_int_eq(c.num_labels, k->labels);
    ck_assert(c.layer_norm_eps == k->eps);
    ck_assert(c.hidden_dropout_prob == 0.1f);
    ck_assert(c.attention_probs_dropout_prob == 0.1f);
    ck_assert_str_eq(c.hidden_act, k->act);

    /* And each survives save -> load unchanged. */
    char out[512];
    snprintf(out, sizeof out, "%s/%s", tmpdir, k->dir);
    ck_assert_msg(model_config_save(&c, out, err, sizeof err) == 0, "%s", err);
    ModelConfig c2;
    ck_assert_msg(model_config_load(&c2, out, err, sizeof err) == 0, "%s", err);
    ck_assert_mem_eq(&c, &c2, sizeof c);
}
END_TEST

static void expect_load_error(const char *dir, const char *w1, const char *w2) {
    ModelConfig c;
    char err[512] = "";
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == -1, "%s loaded, expected error", dir);
    ck_assert_msg(strstr(err, w1) != NULL, "error lacks '%s': %s", w1, err);
    if (w2) ck_assert_msg(strstr(err, w2) != NULL, "error lacks '%s': %s", w2, err);
}

START_TEST(test_unsupported_types) {
    char dir[4096];
    const char *names[] = {"deberta-v3-base", "stories260K"};
    const char *types[] = {"'deberta-v2'", "'llama'"};
    for (int i = 0; i < 2; i++) {
        int r = asset_model(names[i], dir, sizeof dir);
        if (r == 0) break;
        ck_assert_msg(r == 1, "BILORA_ASSETS set but models/%s missing", names[i]);
        expect_load_error(dir, types[i], "supported: bert, roberta, gpt2");
    }
    make_config("t5", "{\"model_type\": \"t5\", \"d_model\": 512}", dir, sizeof dir);
    expect_load_error(dir, "unsupported model_type 't5'", "supported: bert, roberta, gpt2");
    expect_load_error(dir, "config.json", NULL);
}
END_TEST

/* The 2019 roberta-base config, shape fields only. */
static const char *OLD_ROBERTA =
    "{\"attention_probs_dropout_prob\": 0.1, \"hidden_act\": \"gelu\", \"hidden_dropout_prob\": 0.1,"
    " \"hidden_size\": 768, \"intermediate_size\": 3072, \"layer_norm_eps\": 1e-05,"
    " \"max_position_embeddings\": 514, \"num_attention_heads\": 12, \"num_hidden_layers\": 12,"
    " \"type_vocab_size\": 1, \"vocab_size\": 50265}";

START_TEST(test_type_inference) {
    char dir[4096], err[512];
    ModelConfig c;
    /* By directory name ("roberta" wins over the "bert" inside it). */
    make_config("my-RoBERTa-copy", OLD_ROBERTA, dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "roberta");
    ck_assert_int_eq(c.pad_token_id, 1);
    /* Trailing slash and "./" forms name the same directory. */
    char alt[4200];
    snprintf(alt, sizeof alt, "%s/", dir);
    ck_assert_msg(model_config_load(&c, alt, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "roberta");
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_msg(model_config_load(&c, ".", err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "roberta");
    ck_assert_msg(model_config_load(&c, "../my-RoBERTa-copy/.", err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "roberta");
    ck_assert_int_eq(chdir(start_cwd), 0);

    make_config("distilgpt2-ish", "{\"vocab_size\": 100, \"n_embd\": 64, \"n_layer\": 2,"
                                  " \"n_head\": 4, \"n_positions\": 128}",
                dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "gpt2");
    ck_assert_int_eq(c.pad_token_id, -1);
    ck_assert_int_eq(c.intermediate_size, 256);

    /* Hub snapshot: the name lives in models--org--name, not the hash. */
    make_config("hub/models--FacebookAI--roberta-base/snapshots/e2da8e2f811d1448a5b465c236feacd80ffbac7b",
                OLD_ROBERTA, dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "roberta");

    /* Nothing in the name: architectures decides. */
    char json[2048];
    snprintf(json, sizeof json, "{\"architectures\": [\"RobertaForMaskedLM\"], %s", OLD_ROBERTA + 1);
    make_config("plain", json, dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "roberta");
    ck_assert_int_eq(c.pad_token_id, 1);

    /* Neither: bert, pad 0. */
    make_config("mystery", OLD_ROBERTA, dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "bert");
    ck_assert_int_eq(c.pad_token_id, 0);
    ck_assert_int_eq(c.num_labels, 0);

    /* An explicit model_type beats the directory name; an explicit pad too. */
    snprintf(json, sizeof json, "{\"model_type\": \"bert\", \"pad_token_id\": 7, %s", OLD_ROBERTA + 1);
    make_config("roberta-named-bert", json, dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.model_type, "bert");
    ck_assert_int_eq(c.pad_token_id, 7);
}
END_TEST

START_TEST(test_labels_and_nulls) {
    char dir[4096], err[512], json[2048];
    ModelConfig c;
    snprintf(json, sizeof json,
             "{\"model_type\": \"roberta\", \"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"},"
             " \"pad_token_id\": null, \"hidden_act\": null, %s",
             OLD_ROBERTA + 1);
    make_config("labels", json, dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.num_labels, 3);
    ck_assert_int_eq(c.pad_token_id, 1); /* null -> default */
    ck_assert_str_eq(c.hidden_act, "gelu");

    make_config("gpt2-inner",
                "{\"model_type\": \"gpt2\", \"vocab_size\": 100, \"n_embd\": 64, \"n_layer\": 2,"
                " \"n_head\": 4, \"n_positions\": 128, \"n_inner\": 100, \"resid_pdrop\": 0.25,"
                " \"attn_pdrop\": 0, \"activation_function\": \"relu\", \"layer_norm_epsilon\": 1e-6,"
                " \"pad_token_id\": 99, \"num_labels\": 5}",
                dir, sizeof dir);
    ck_assert_msg(model_config_load(&c, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.intermediate_size, 100);
    ck_assert(c.hidden_dropout_prob == 0.25f);
    ck_assert(c.attention_probs_dropout_prob == 0.0f);
    ck_assert(c.layer_norm_eps == 1e-6f);
    ck_assert_str_eq(c.hidden_act, "relu");
    ck_assert_int_eq(c.pad_token_id, 99);
    ck_assert_int_eq(c.num_labels, 5);
    ck_assert_int_eq(c.type_vocab_size, 0);
}
END_TEST

START_TEST(test_missing_and_wrong_fields) {
    char dir[4096], json[2048];
    /* Required field missing: names the file and the field. */
    make_config("bert-missing",
                "{\"model_type\": \"bert\", \"vocab_size\": 10, \"num_hidden_layers\": 1,"
                " \"num_attention_heads\": 1, \"intermediate_size\": 4, \"max_position_embeddings\": 8}",
                dir, sizeof dir);
    expect_load_error(dir, "bert-missing/config.json", "\"hidden_size\" is missing");
    make_config("gpt2-missing",
                "{\"model_type\": \"gpt2\", \"vocab_size\": 10, \"n_layer\": 1, \"n_head\": 1,"
                " \"n_positions\": 8}",
                dir, sizeof dir);
    expect_load_error(dir, "gpt2-missing/config.json", "\"n_embd\" is missing");
    make_config("bert-null",
                "{\"model_type\": \"bert\", \"vocab_size\": null, \"hidden_size\": 4,"
                " \"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"intermediate_size\": 4,"
                " \"max_position_embeddings\": 8}",
                dir, sizeof dir);
    expect_load_error(dir, "\"vocab_size\" is null", NULL);

    /* Wrong types: names the field and the expected type. */
    snprintf(json, sizeof json, "{\"hidden_size\": \"768\", %s", strstr(OLD_ROBERTA, "\"intermediate"));
    make_config("roberta-str", json, dir, sizeof dir);
    expect_load_error(dir, "\"hidden_size\" must be an integer", "got a string");
    snprintf(json, sizeof json, "{\"model_type\": \"roberta\", \"num_hidden_layers\": 12.5, %s",
             OLD_ROBERTA + 1);
    make_config("roberta-frac", json, dir, sizeof dir);
    /* cJSON keeps the later duplicate out of reach: the first key wins. */
    expect_load_error(dir, "\"num_hidden_layers\" must be an integer", "non-integer");
    snprintf(json, sizeof json, "{\"layer_norm_eps\": \"tiny\", %s", OLD_ROBERTA + 1);
    make_config("roberta-eps", json, dir, sizeof dir);
    expect_load_error(dir, "\"layer_norm_eps\" must be a number", "got a string");
    snprintf(json, sizeof json, "{\"hidden_act\": 5, %s", OLD_ROBERTA + 1);
    make_config("roberta-act", json, dir, sizeof dir);
    expect_load_error(dir, "\"hidden_act\" must be a string", "got a number");
    snprintf(json, sizeof json, "{\"model_type\": [\"bert\"], %s", OLD_ROBERTA + 1);
    make_config("roberta-mt", json, dir, sizeof dir);
    expect_load_error(dir, "\"model_type\" must be a string", "got an array");
    snprintf(json, sizeof json, "{\"id2label\": [\"a\"], %s", OLD_ROBERTA + 1);
    make_config("roberta-labels", json, dir, sizeof dir);
    expect_load_error(dir, "\"id2label\" must be an object", NULL);
    snprintf(json, sizeof json, "{\"num_attention_heads\": 7, %s", OLD_ROBERTA + 1);
    make_config("roberta-heads", json, dir, sizeof dir);
    expect_load_error(dir, "not divisible", NULL);

    /* Not JSON, not an object, no file. */
    make_config("broken", "{\"model_type\": \"bert\",\n \"hidden_size\": }", dir, sizeof dir);
    expect_load_error(dir, "not valid JSON", "line 2");
    make_config("array", "[1, 2]", dir, sizeof dir);
    expect_load_error(dir, "JSON object", NULL);
    snprintf(dir, sizeof dir, "%s/nowhere", tmpdir);
    expect_load_error(dir, "nowhere/config.json", "cannot open");
}
END_TEST

START_TEST(test_save_load_round_trip) {
    char dir[512], err[512];
    ModelConfig in[3];
    memset(in, 0, sizeof in);
    in[0] = (ModelConfig){.model_type = "bert", .vocab_size = 1000, .hidden_size = 64,
                          .num_hidden_layers = 2, .num_attention_heads = 4, .intermediate_size = 256,
                          .max_position_embeddings = 128, .type_vocab_size = 2, .pad_token_id = 0,
                          .layer_norm_eps = 1e-12f, .hidden_dropout_prob = 0.1f,
                          .attention_probs_dropout_prob = 0.05f, .hidden_act = "gelu", .num_labels = 0};
    in[1] = (ModelConfig){.model_type = "roberta", .vocab_size = 50265, .hidden_size = 96,
                          .num_hidden_layers = 3, .num_attention_heads = 3, .intermediate_size = 300,
                          .max_position_embeddings = 514, .type_vocab_size = 1, .pad_token_id = 1,
                          .layer_norm_eps = 1e-5f, .hidden_dropout_prob = 0.3f,
                          .attention_probs_dropout_prob = 0.1f, .hidden_act = "gelu", .num_labels = 3};
    in[2] = (ModelConfig){.model_type = "gpt2", .vocab_size = 50257, .hidden_size = 128,
                          .num_hidden_layers = 2, .num_attention_heads = 2, .intermediate_size = 512,
                          .max_position_embeddings = 1024, .type_vocab_size = 0, .pad_token_id = -1,
                          .layer_norm_eps = 1e-5f, .hidden_dropout_prob = 0.0f,
                          .attention_probs_dropout_prob = 0.1f, .hidden_act = "gelu_new", .num_labels = 2};
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/rt%d", tmpdir, i); /* created by save */
        ck_assert_msg(model_config_save(&in[i], dir, err, sizeof err) == 0, "%s", err);
        ModelConfig out;
        ck_assert_msg(model_config_load(&out, dir, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(out.model_type, in[i].model_type);
        ck_assert_mem_eq(&out, &in[i], sizeof out);
    }
    /* gpt2 with a non-default n_inner keeps it. */
    in[2].intermediate_size = 300;
    snprintf(dir, sizeof dir, "%s/rt2", tmpdir);
    ck_assert_msg(model_config_save(&in[2], dir, err, sizeof err) == 0, "%s", err);
    ModelConfig out;
    ck_assert_msg(model_config_load(&out, dir, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(out.intermediate_size, 300);

    /* Floats are written in their shortest form, not the double expansion. */
    char p[600];
    snprintf(p, sizeof p, "%s/rt0/config.json", tmpdir);
    FILE *f = fopen(p, "r");
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    ck_assert_msg(strstr(buf, "\"layer_norm_eps\":\t1e-12"), "%s", buf);
    ck_assert_msg(strstr(buf, "\"initializer_range\":\t0.02"), "%s", buf);

    /* Unsupported types and nonsense shapes are refused. */
    ModelConfig bad = in[0];
    snprintf(bad.model_type, sizeof bad.model_type, "llama");
    ck_assert_int_eq(model_config_save(&bad, dir, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'llama'"));
    bad = in[0];
    bad.num_attention_heads = 3;
    ck_assert_int_eq(model_config_save(&bad, dir, err, sizeof err), -1);
}
END_TEST

/* transformers.AutoConfig reads what we write. Runs only where the
 * project's venv exists (the test runner's working directory is the
 * repository root). */
START_TEST(test_save_loads_in_transformers) {
    const char *py = getenv("BILORA_PYTHON");
    char venv[4200];
    snprintf(venv, sizeof venv, "%s/.venv/bin/python", start_cwd);
    if (!py) py = venv;
    if (access(py, X_OK) != 0) {
        fprintf(stderr, "test_save_loads_in_transformers: %s not found, skipped\n", py);
        return;
    }
    char err[512], dir[3][512];
    ModelConfig c[3] = {
        {.model_type = "bert", .vocab_size = 30522, .hidden_size = 128, .num_hidden_layers = 2,
         .num_attention_heads = 2, .intermediate_size = 512, .max_position_embeddings = 512,
         .type_vocab_size = 2, .pad_token_id = 0, .layer_norm_eps = 1e-12f,
         .hidden_dropout_prob = 0.1f, .attention_probs_dropout_prob = 0.1f, .hidden_act = "gelu",
         .num_labels = 2},
        {.model_type = "roberta", .vocab_size = 50265, .hidden_size = 768, .num_hidden_layers = 12,
         .num_attention_heads = 12, .intermediate_size = 3072, .max_position_embeddings = 514,
         .type_vocab_size = 1, .pad_token_id = 1, .layer_norm_eps = 1e-5f,
         .hidden_dropout_prob = 0.1f, .attention_probs_dropout_prob = 0.1f, .hidden_act = "gelu",
         .num_labels = 3},
        {.model_type = "gpt2", .vocab_size = 50257, .hidden_size = 1024, .num_hidden_layers = 24,
         .num_attention_heads = 16, .intermediate_size = 4096, .max_position_embeddings = 1024,
         .type_vocab_size = 0, .pad_token_id = -1, .layer_norm_eps = 1e-5f,
         .hidden_dropout_prob = 0.1f, .attention_probs_dropout_prob = 0.1f,
         .hidden_act = "gelu_new", .num_labels = 0},
    };
    for (int i = 0; i < 3; i++) {
        snprintf(dir[i], sizeof dir[i], "%s/hf%d", tmpdir, i);
        ck_assert_msg(model_config_save(&c[i], dir[i], err, sizeof err) == 0, "%s", err);
    }
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "%s -c '\n"
             "import sys\n"
             "from transformers import AutoConfig\n"
             "b = AutoConfig.from_pretrained(sys.argv[1])\n"
             "assert b.model_type == \"bert\" and type(b).__name__ == \"BertConfig\", b\n"
             "assert (b.hidden_size, b.num_hidden_layers, b.num_attention_heads, b.intermediate_size) "
             "== (128, 2, 2, 512)\n"
             "assert b.layer_norm_eps == 1e-12 and b.pad_token_id == 0 and b.num_labels == 2\n"
             "assert b.position_embedding_type == \"absolute\" and b.type_vocab_size == 2\n"
             "r = AutoConfig.from_pretrained(sys.argv[2])\n"
             "assert type(r).__name__ == \"RobertaConfig\", r\n"
             "assert (r.hidden_size, r.max_position_embeddings, r.pad_token_id, r.bos_token_id, "
             "r.eos_token_id) == (768, 514, 1, 0, 2)\n"
             "assert r.num_labels == 3 and r.layer_norm_eps == 1e-5\n"
             "g = AutoConfig.from_pretrained(sys.argv[3])\n"
             "assert type(g).__name__ == \"GPT2Config\", g\n"
             "assert (g.n_embd, g.n_layer, g.n_head, g.n_positions, g.n_inner) == (1024, 24, 16, 1024, "
             "None)\n"
             "assert g.activation_function == \"gelu_new\" and g.layer_norm_epsilon == 1e-5\n"
             "assert g.bos_token_id == 50256 and g.pad_token_id is None\n"
             "print(\"transformers loaded all three\")\n"
             "' %s %s %s 2>&1",
             py, dir[0], dir[1], dir[2]);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert_msg(st == 0, "transformers rejected the saved configs:\n%s", out);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("model_config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_real_configs, 0, (int)(sizeof KNOWN / sizeof KNOWN[0]));
    tcase_add_test(tc, test_unsupported_types);
    tcase_add_test(tc, test_type_inference);
    tcase_add_test(tc, test_labels_and_nulls);
    tcase_add_test(tc, test_missing_and_wrong_fields);
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_save_loads_in_transformers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (!getcwd(start_cwd, sizeof start_cwd)) snprintf(start_cwd, sizeof start_cwd, ".");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
