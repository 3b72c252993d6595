#include "ui/options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const Option *find(const Option *opts, int n, const char *flag, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, flag, len) == 0) return &opts[i];
    return NULL;
}

static int set_value(const Option *o, const char *v, char *err, size_t errlen) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        if (strlen(v) >= o->cap) {
            snprintf(err, errlen, "%s: value too long (at most %zu characters)", o->flag, o->cap - 1);
            return -1;
        }
        memcpy(o->dst, v, strlen(v) + 1);
        return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end || x < -2147483647L || x > 2147483647L) break;
        *(int *)o->dst = (int)x;
        return 0;
    }
    case OPT_LONG: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end) break;
        *(long *)o->dst = x;
        return 0;
    }
    case OPT_U64: {
        if (*v == '-') break;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || !*v || *end) break;
        *(uint64_t *)o->dst = (uint64_t)x;
        return 0;
    }
    case OPT_FLOAT: {
        float x = strtof(v, &end);
        if (errno || !*v || *end || !isfinite(x)) break;
        *(float *)o->dst = x;
        return 0;
    }
    case OPT_FLAG:
        *(int *)o->dst = 1;
        return 0;
    }
    const char *what = o->type == OPT_FLOAT ? "a number" : o->type == OPT_U64 ? "a non-negative integer" : "an integer";
    snprintf(err, errlen, "%s: expected %s, got '%s'", o->flag, what, v);
    return -1;
}

int options_parse(const Option *opts, int n, int argc, char **argv, char *err, size_t errlen) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (flags start with --; see --help)", a);
            return -1;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const Option *o = find(opts, n, a, len);
        if (!o) {
            snprintf(err, errlen, "unknown flag '%.*s' (see --help)", (int)len, a);
            return -1;
        }
        const char *v;
        if (o->type == OPT_FLAG) {
            if (eq) { snprintf(err, errlen, "%s takes no value", o->flag); return -1; }
            v = "1";
        } else if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", o->flag);
                return -1;
            }
            v = argv[++i];
        }
        if (set_value(o, v, err, errlen) != 0) return -1;
    }
    return 0;
}

void options_help(FILE *f, const char *usage, const Option *opts, int n) {
    fprintf(f, "%s\n\nflags:\n", usage);
    for (int i = 0; i < n; i++) {
        const Option *o = &opts[i];
        char def[160] = "";
        switch (o->type) {
        case OPT_STR: snprintf(def, sizeof(def), "%s", *(const char *)o->dst ? (const char *)o->dst : "(none)"); break;
        case OPT_INT: snprintf(def, sizeof(def), "%d", *(const int *)o->dst); break;
        case OPT_LONG: snprintf(def, sizeof(def), "%ld", *(const long *)o->dst); break;
        case OPT_U64: snprintf(def, sizeof(def), "%" PRIu64, *(const uint64_t *)o->dst); break;
        case OPT_FLOAT: snprintf(def, sizeof(def), "%g", *(const float *)o->dst); break;
        case OPT_FLAG: snprintf(def, sizeof(def), "off"); break;
        }
        fprintf(f, "  %-22s %s (default: %s)\n", o->flag, o->help, def);
    }
    fprintf(f, "  %-22s this help\n", "--help");
}
