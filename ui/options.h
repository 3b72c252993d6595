/* Table-driven command-line flags: one table per subcommand gives each
 * flag's name, type, destination and help; --help prints the table with the
 * current (default) values. */
#ifndef BILORA_UI_OPTIONS_H
#define BILORA_UI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum { OPT_STR, OPT_INT, OPT_LONG, OPT_U64, OPT_FLOAT, OPT_FLAG } OptType;

typedef struct {
    const char *flag;   /* "--rank" */
    OptType type;
    void *dst;
    size_t cap;         /* OPT_STR: buffer size */
    const char *help;
} Option;

/* Parses argv[0..argc) (after the subcommand). Returns 0, 1 when --help was
 * asked for, or -1 with a message naming the flag. */
int options_parse(const Option *opts, int n, int argc, char **argv, char *err, size_t errlen);
void options_help(FILE *f, const char *usage, const Option *opts, int n);

#endif
