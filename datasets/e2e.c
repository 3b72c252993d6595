#include "datasets/e2e.h"

#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    E2ESplit *out;
    int cap;
    char *field[2];   /* this record's fields so far */
    int nfield;
    long line;        /* the physical line being fed */
    int header_done;
    int failed;
    char *err;
    size_t errlen;
    const char *path;
} Parse;

static void on_field(void *data, size_t len, void *ctx) {
    Parse *p = ctx;
    if (p->failed) return;
    if (p->nfield < 2) {
        p->field[p->nfield] = malloc(len + 1);
        if (!p->field[p->nfield]) {
            snprintf(p->err, p->errlen, "out of memory reading %s", p->path);
            p->failed = 1;
            return;
        }
        memcpy(p->field[p->nfield], data, len);
        p->field[p->nfield][len] = 0;
    }
    p->nfield++;
}

/* Empty or only spaces, tabs and line breaks: nothing to read or write. */
static int blank(const char *s) {
    return s[strspn(s, " \t\r\n")] == 0;
}

static void drop_fields(Parse *p) {
    for (int i = 0; i < 2; i++) { free(p->field[i]); p->field[i] = NULL; }
    p->nfield = 0;
}

static void on_record(int term, void *ctx) {
    (void)term;
    Parse *p = ctx;
    if (p->failed) { drop_fields(p); return; }
    if (!p->header_done) {
        p->header_done = 1;
        const char *a = p->field[0] ? p->field[0] : "";
        if ((unsigned char)a[0] == 0xEF && (unsigned char)a[1] == 0xBB && (unsigned char)a[2] == 0xBF)
            a += 3; /* UTF-8 byte-order mark */
        if (p->nfield != 2 || strcmp(a, "mr") != 0 || strcmp(p->field[1], "ref") != 0) {
            snprintf(p->err, p->errlen, "%s line %ld: expected the header \"mr,ref\"", p->path,
                     p->line);
            p->failed = 1;
        }
        drop_fields(p);
        return;
    }
    if (p->nfield != 2) {
        snprintf(p->err, p->errlen, "%s line %ld: %d field(s), expected 2 (mr,ref)", p->path,
                 p->line, p->nfield);
        p->failed = 1;
        drop_fields(p);
        return;
    }
    if (blank(p->field[0]) || blank(p->field[1])) {
        snprintf(p->err, p->errlen, "%s line %ld: empty %s field", p->path, p->line,
                 blank(p->field[0]) ? "mr" : "ref");
        p->failed = 1;
        drop_fields(p);
        return;
    }
    E2ESplit *s = p->out;
    if (s->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 1024;
        E2EExample *ne = realloc(s->ex, sizeof(*ne) * (size_t)nc);
        if (!ne) {
            snprintf(p->err, p->errlen, "out of memory reading %s", p->path);
            p->failed = 1;
            drop_fields(p);
            return;
        }
        s->ex = ne;
        p->cap = nc;
    }
    s->ex[s->n++] = (E2EExample){.mr = p->field[0], .ref = p->field[1], .line = (int)p->line};
    p->field[0] = p->field[1] = NULL;
    p->nfield = 0;
}

const char *e2e_task_name(const char *name) {
    if (!name) return NULL;
    if (strncasecmp(name, "data/", 5) == 0) name += 5;
    return strcasecmp(name, "e2e") == 0 ? "E2E" : NULL;
}

const char *e2e_split_file(const char *split) {
    return strcmp(split, "train") == 0 ? "trainset.csv"
         : strcmp(split, "dev") == 0   ? "devset.csv"
         : strcmp(split, "test") == 0  ? "testset_w_refs.csv"
                                       : NULL;
}

int e2e_load(const char *dir, const char *split, E2ESplit *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const char *file = e2e_split_file(split);
    if (!file) {
        snprintf(err, errlen, "E2E split '%s': expected train, dev or test", split);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s (an E2E folder holds trainset.csv, devset.csv, "
                 "testset_w_refs.csv)", path, strerror(errno));
        return -1;
    }
    struct csv_parser cp;
    if (csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    Parse p = {.out = out, .err = err, .errlen = errlen, .path = path};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (!p.failed && (len = getline(&line, &cap, f)) >= 0) {
        p.line++;
        if (csv_parse(&cp, line, (size_t)len, on_field, on_record, &p) != (size_t)len) {
            snprintf(err, errlen, "%s line %ld: %s (a quote out of place?)", path, p.line,
                     csv_strerror(csv_error(&cp)));
            p.failed = 1;
        }
    }
    if (!p.failed && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        p.failed = 1;
    }
    if (!p.failed && csv_fini(&cp, on_field, on_record, &p) != 0) {
        snprintf(err, errlen, "%s line %ld: the file ends inside a quoted field", path, p.line);
        p.failed = 1;
    }
    if (!p.failed && !p.header_done) {
        snprintf(err, errlen, "%s: empty file (expected the header \"mr,ref\")", path);
        p.failed = 1;
    }
    drop_fields(&p);
    free(line);
    csv_free(&cp);
    fclose(f);
    if (p.failed) {
        e2e_split_free(out);
        return -1;
    }
    return 0;
}

void e2e_split_free(E2ESplit *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->ex[i].mr);
        free(s->ex[i].ref);
    }
    free(s->ex);
    memset(s, 0, sizeof(*s));
}
