/* The download core: one URL into one file, with libcurl.
 *
 * A file is written as FILE.part. When a .part is already there (an earlier
 * run or attempt broke off), the request asks for the rest with
 * "Range: bytes=N-"; a 206 answer whose Content-Range starts at N is
 * appended, a 200 answer (the server ignored the range) replaces the .part
 * from the start. A transfer that breaks off mid-file is retried, resuming,
 * with a doubling wait; when the retries run out the .part is kept so the
 * next run resumes. Only a complete file whose size and sha256 match what
 * the source published is renamed to FILE.
 *
 * Where the sha256 comes from: the Hugging Face hub publishes it for LFS
 * files (the weights) in its model listing (?blobs=true: siblings[].lfs.sha256)
 * and as the X-Linked-Etag header of the /resolve/ response, which for LFS
 * files is a redirect to a CDN; the hub's own ETag on that first response is
 * the same digest, quoted. The CDN's ETag, after the redirect, is something
 * else, so only X-Linked-Etag (any response) and the ETag of the first
 * response are read, and only when they are 64 hex digits: the ETag of a
 * small non-LFS file is its git blob id (40 hex digits) and is not a sha256.
 * A digest from the caller (the listing, PyPI's digests.sha256) and one from
 * the headers must both match. */
#include "engine/fetch_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void fetch_human(double b, char *out, size_t cap) {
    /* Decimal units, as download tools and the hub's own pages show sizes. */
    if (b < 1e3) fetch_fmt(out, cap, "%.0f B", b);
    else if (b < 1e6) fetch_fmt(out, cap, "%.1f kB", b / 1e3);
    else if (b < 1e9) fetch_fmt(out, cap, "%.1f MB", b / 1e6);
    else fetch_fmt(out, cap, "%.2f GB", b / 1e9);
}

static void human_time(double s, char *out, size_t cap) {
    if (s < 0 || s > 1e7) fetch_fmt(out, cap, "--");
    else if (s < 60) fetch_fmt(out, cap, "%.0fs", s);
    else if (s < 3600) fetch_fmt(out, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else fetch_fmt(out, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* ---- progress ---- */

typedef struct {
    FILE *f;
    FetchProgress mode;
    const char *label;
    int64_t start;  /* bytes already there when this transfer began */
    int64_t total;  /* -1 while unknown */
    double t0, last;
    int last_decile;
    int64_t last_line_bytes;
    int drew;       /* a bar line is on screen without its newline */
} Progress;

static void progress_draw(Progress *p, int64_t now, int final) {
    if (!p->f || p->mode == FETCH_PROGRESS_NONE) return;
    double t = now_s();
    double el = t - p->t0;
    double rate = el > 0 ? (double)(now - p->start) / el : 0;
    char sz[32], tot[32], rt[32], eta[32];
    fetch_human((double)now, sz, sizeof sz);
    fetch_human(p->total >= 0 ? (double)p->total : 0, tot, sizeof tot);
    fetch_human(rate, rt, sizeof rt);
    human_time(p->total > 0 && rate > 0 ? (double)(p->total - now) / rate : -1, eta, sizeof eta);
    int pct = p->total > 0 ? (int)(100.0 * (double)now / (double)p->total) : -1;
    if (final) {
        char resumed[64] = "";
        if (p->start > 0) {
            char s[32];
            fetch_human((double)p->start, s, sizeof s);
            fetch_fmt(resumed, sizeof resumed, ", resumed at %s", s);
        }
        if (p->mode == FETCH_PROGRESS_BAR && p->drew) fprintf(p->f, "\r\033[K");
        fprintf(p->f, "  %s: %s in %.1f s (%s/s%s)\n", p->label, sz, el, rt, resumed);
        fflush(p->f);
        p->drew = 0;
        return;
    }
    if (p->mode == FETCH_PROGRESS_BAR) {
        if (t - p->last < 0.1) return; /* ten redraws a second are plenty */
        p->last = t;
        char bar[21];
        int fill = pct >= 0 ? pct / 5 : 0;
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
        bar[20] = 0;
        if (pct >= 0)
            fprintf(p->f, "\r\033[K  %-24.24s [%s] %3d%%  %s / %s  %s/s  ETA %s", p->label, bar, pct,
                    sz, tot, rt, eta);
        else
            fprintf(p->f, "\r\033[K  %-24.24s %s  %s/s", p->label, sz, rt);
        fflush(p->f);
        p->drew = 1;
        return;
    }
    /* Lines: one per 10% when the size is known, one per 10 MB otherwise,
     * so a log shows the pace without flooding. */
    if (pct >= 0) {
        int dec = pct / 10;
        if (dec <= p->last_decile || dec >= 10) return;
        p->last_decile = dec;
        fprintf(p->f, "  %s: %3d%%  %s / %s  %s/s  ETA %s\n", p->label, dec * 10, sz, tot, rt, eta);
    } else {
        if (now - p->last_line_bytes < 10000000) return;
        p->last_line_bytes = now;
        fprintf(p->f, "  %s: %s  %s/s\n", p->label, sz, rt);
    }
    fflush(p->f);
}

/* ---- one HTTP request ---- */

typedef struct {
    const char *part;
    int fd;              /* -1 until the first body byte decides how to open */
    int64_t have;        /* bytes of .part this request continues from */
    int64_t got;         /* body bytes written by this request */
    long status;         /* status of the latest response in the chain */
    int nresp;           /* responses seen (redirects included) */
    int64_t clen;        /* Content-Length of the latest response, -1 unknown */
    int64_t cr_start, cr_total; /* its Content-Range, -1 unknown */
    char first_etag[80], linked_etag[80];
    int write_errno;     /* errno of a failed write */
    int range_mismatch;  /* a 206 that does not continue where we are */
    Progress *prog;
    /* memory mode (listings) */
    char *mem;
    size_t mlen, mcap;
} Xfer;

static void trim_value(const char *s, size_t n, char *out, size_t cap) {
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
    Xfer *x = ud;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (the first, or the next after a redirect): what we
         * know about "the response" starts over. */
        const char *sp = memchr(buf, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->nresp++;
        x->clen = -1;
        x->cr_start = x->cr_total = -1;
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon) return n;
    size_t klen = (size_t)(colon - buf);
    char val[256];
    trim_value(colon + 1, n - klen - 1, val, sizeof val);
    if (klen == 14 && strncasecmp(buf, "Content-Length", 14) == 0) {
        x->clen = strtoll(val, NULL, 10);
    } else if (klen == 13 && strncasecmp(buf, "Content-Range", 13) == 0) {
        /* "bytes START-END/TOTAL" (TOTAL may be "*") */
        long long a = -1, b = -1, t = -1;
        if (sscanf(val, "bytes %lld-%lld/%lld", &a, &b, &t) >= 2) {
            x->cr_start = a;
            x->cr_total = t;
        }
    } else if (klen == 13 && strncasecmp(buf, "X-Linked-Etag", 13) == 0) {
        fetch_fmt(x->linked_etag, sizeof x->linked_etag, "%s", val);
    } else if (klen == 4 && strncasecmp(buf, "ETag", 4) == 0 && x->nresp == 1) {
        fetch_fmt(x->first_etag, sizeof x->first_etag, "%s", val);
    }
    return n;
}

/* Opens the .part for this response's body: appended after a 206 that
 * continues at x->have, rewritten from zero after a 200. */
static int open_part(Xfer *x) {
    int flags = O_WRONLY | O_CREAT;
    if (x->status == 206 && x->have > 0) {
        if (x->cr_start != x->have) {
            x->range_mismatch = 1;
            return -1;
        }
        flags |= O_APPEND;
    } else {
        flags |= O_TRUNC;
        x->have = 0;
    }
    x->fd = open(x->part, flags, 0644);
    if (x->fd < 0) {
        x->write_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

static int64_t xfer_total(const Xfer *x, int64_t expected) {
    if (x->status == 206 && x->cr_total >= 0) return x->cr_total;
    if (x->status == 200 && x->clen >= 0) return x->clen;
    return expected;
}

static size_t write_cb(char *buf, size_t size, size_t nitems, void *ud) {
    Xfer *x = ud;
    size_t n = size * nitems;
    /* Bodies of error answers (a 404 page) are read and dropped, never
     * written into the file. */
    if (x->status != 200 && x->status != 206) return n;
    if (x->fd < 0) {
        if (open_part(x) != 0) return 0;
        if (x->prog) {
            x->prog->start = x->have;
            x->prog->total = xfer_total(x, x->prog->total);
        }
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(x->fd, buf + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            x->write_errno = errno;
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        off += (size_t)w;
    }
    x->got += (int64_t)n;
    if (x->prog) progress_draw(x->prog, x->have + x->got, 0);
    return n;
}

static size_t mem_cb(char *buf, size_t size, size_t nitems, void *ud) {
    Xfer *x = ud;
    size_t n = size * nitems;
    if (x->mlen + n + 1 > x->mcap) {
        /* Listings are small; a runaway answer is cut off rather than
         * eating memory. */
        if (x->mlen + n + 1 > (size_t)64 << 20) return 0;
        size_t nc = x->mcap ? x->mcap * 2 : 65536;
        while (nc < x->mlen + n + 1) nc *= 2;
        char *nb = realloc(x->mem, nc);
        if (!nb) return 0;
        x->mem = nb;
        x->mcap = nc;
    }
    memcpy(x->mem + x->mlen, buf, n);
    x->mlen += n;
    x->mem[x->mlen] = 0;
    return n;
}

static void host_of(const char *url, char *out, size_t cap) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* The shared request setup; headers is freed by the caller. */
static CURL *new_request(const FetchCtx *c, const char *url, int hub, Xfer *x, char *errbuf,
                         struct curl_slist **headers) {
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "bilora-fetch/1 (libcurl)");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
    /* A connection that stays open but sends nothing is as broken as a
     * closed one: treat a stall as a drop (and resume). */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    *headers = NULL;
    if (hub && c->token[0]) {
        /* libcurl drops a custom Authorization header when a redirect goes
         * to another host, so the token reaches the hub, not the CDN. */
        char auth[1100];
        fetch_fmt(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        *headers = curl_slist_append(NULL, auth);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
    }
    return h;
}

static int is_network_error(CURLcode rc) {
    return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
           rc == CURLE_COULDNT_CONNECT;
}

/* A transfer that broke off and is worth resuming. */
static int is_drop(CURLcode rc) {
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_HTTP2 ||
           rc == CURLE_HTTP2_STREAM || rc == CURLE_SSL_CONNECT_ERROR;
}

static void network_error(const char *url, const char *via, CURLcode rc, const char *errbuf,
                          char *err, size_t errlen) {
    char host[256];
    host_of(url, host, sizeof host);
    int is_model = via && (strcmp(via, "BILORA_HUB_URL") == 0 || strcmp(via, "BILORA_PYPI_URL") == 0);
    fetch_fmt(err, errlen,
             "no network: %s %s (%s; url %s). Check the connection (or proxy), point %s at a "
             "reachable mirror, or work offline: %s",
             rc == CURLE_COULDNT_RESOLVE_HOST ? "could not resolve host" : "could not connect to",
             host, errbuf[0] ? errbuf : curl_easy_strerror(rc), url, via ? via : "the address",
             is_model
                 ? "models already on disk (BILORA_ASSETS, a Hugging Face cache) are used as they "
                   "are, and `bilora pretrain` builds a base model without a network"
                 : "data already on disk (each BILORA_ASSETS root's data/) is used as it is");
}

static FetchErr http_status_error(long status, const char *url, char *err, size_t errlen) {
    if (status == 404) {
        fetch_fmt(err, errlen, "HTTP 404 Not Found: %s", url);
        return FE_NOT_FOUND;
    }
    if (status == 401 || status == 403)
        fetch_fmt(err, errlen,
                 "HTTP %ld (access denied): %s; the repository may be gated or private: accept "
                 "its terms on the hub and set HF_TOKEN",
                 status, url);
    else
        fetch_fmt(err, errlen, "HTTP %ld from %s", status, url);
    return FE_HTTP;
}

/* The 64-hex digest in an ETag-like value ("W/\"abc...\""), or "". */
static void etag_sha256(const char *v, char out[65]) {
    out[0] = 0;
    if (strncmp(v, "W/", 2) == 0) v += 2;
    if (*v == '"') v++;
    size_t n = 0;
    while (n < 64 && ((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'f') ||
                      (v[n] >= 'A' && v[n] <= 'F')))
        n++;
    char next = v[n];
    if (n != 64 || (next && next != '"')) return;
    for (int i = 0; i < 64; i++) out[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] + 32 : v[i]);
    out[64] = 0;
}

static int64_t file_size(const char *p) {
    struct stat sb;
    if (stat(p, &sb) != 0) return -1;
    return S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : 0;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The final checks on a complete .part, then the rename. */
static FetchErr finish(const Download *d, const char *part, const char *header_sha,
                       char sha_seen[65], char *err, size_t errlen) {
    int64_t sz = file_size(part);
    if (d->size >= 0 && sz != d->size) {
        fetch_fmt(err, errlen, "%s: got %lld bytes, the source lists %lld; the download was deleted",
                 d->url, (long long)sz, (long long)d->size);
        unlink(part);
        return FE_CHECKSUM;
    }
    const char *want = d->sha256 && d->sha256[0] ? d->sha256 : NULL;
    if (want && header_sha[0] && strcasecmp(want, header_sha) != 0) {
        fetch_fmt(err, errlen,
                 "%s: the listing gives sha256 %s but the download's headers give %s (the file "
                 "changed while fetching?); rerun",
                 d->url, want, header_sha);
        unlink(part);
        return FE_CHECKSUM;
    }
    if (!want && header_sha[0]) want = header_sha;
    sha_seen[0] = 0;
    if (want) {
        char got[65];
        if (sha256_file_hex(part, got, err, errlen) != 0) return FE_OTHER;
        if (strcasecmp(got, want) != 0) {
            fetch_fmt(err, errlen,
                     "sha256 mismatch for %s: expected %s, got %s; the download was deleted "
                     "(corrupted in transit, or the mirror serves other bytes); rerun to try again",
                     d->url, want, got);
            unlink(part);
            return FE_CHECKSUM;
        }
        fetch_fmt(sha_seen, 65, "%s", got);
    }
    /* Flush the data before the rename makes it look complete: a crash
     * must not leave a final name on a file with holes. */
    int fd = open(part, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(part, d->dest) != 0) {
        fetch_fmt(err, errlen, "cannot rename %s to %s: %s", part, d->dest, strerror(errno));
        return errno == ENOSPC ? FE_DISK : FE_OTHER;
    }
    return FE_OK;
}

FetchErr fetch_download(const FetchCtx *c, Download *d, char *err, size_t errlen) {
    char part[PATH_MAX];
    if ((size_t)fetch_fmt(part, sizeof part, "%s.part", d->dest) >= sizeof part) {
        fetch_fmt(err, errlen, "%s: path too long", d->dest);
        return FE_OTHER;
    }
    d->sha256_seen[0] = 0;
    d->bytes = 0;
    d->resumed = 0;
    int attempts = 1 + (c->retries > 0 ? c->retries : 0);
    int64_t ever = 0; /* bytes received over all attempts */
    char header_sha[65] = "";
    const char *label = d->label ? d->label : d->dest;
    int restarted = 0;
    for (int attempt = 0; attempt < attempts; attempt++) {
        int64_t have = file_size(part);
        if (have < 0) have = 0;
        if (d->size >= 0 && have > d->size) {
            /* Longer than the whole file: not a prefix of it. */
            unlink(part);
            have = 0;
        }
        if (d->size > 0 && have == d->size) {
            /* An earlier run got every byte but stopped before the rename. */
            FetchErr fe = finish(d, part, header_sha, d->sha256_seen, err, errlen);
            if (fe == FE_OK) d->bytes = d->size;
            return fe;
        }
        if (have > 0) d->resumed = 1;
        Xfer x = {.part = part, .fd = -1, .have = have, .clen = -1, .cr_start = -1, .cr_total = -1};
        Progress prog = {.f = c->prog, .mode = c->mode, .label = label, .start = have,
                         .total = d->size, .t0 = now_s(), .last_decile = 0};
        prog.last_decile = d->size > 0 ? (int)(10.0 * (double)have / (double)d->size) : 0;
        x.prog = &prog;
        char errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdrs = NULL;
        CURL *h = new_request(c, d->url, d->hub, &x, errbuf, &hdrs);
        if (!h) {
            fetch_fmt(err, errlen, "curl_easy_init failed");
            return FE_OTHER;
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        char range[64];
        if (have > 0) {
            /* CURLOPT_RANGE rather than RESUME_FROM: with RESUME_FROM libcurl
             * itself fails on a 200 answer, and we want to handle it (start
             * over). */
            fetch_fmt(range, sizeof range, "%lld-", (long long)have);
            curl_easy_setopt(h, CURLOPT_RANGE, range);
        }
        CURLcode rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        if ((x.status == 200 || x.status == 206) && x.fd < 0 && rc == CURLE_OK) {
            /* An empty body never reaches write_cb: create the (empty) file. */
            if (open_part(&x) != 0 && !x.range_mismatch) x.write_errno = x.write_errno ? x.write_errno : EIO;
        }
        if (x.fd >= 0) {
            if (rc == CURLE_OK && fsync(x.fd) != 0 && (errno == ENOSPC || errno == EDQUOT))
                x.write_errno = errno;
            if (close(x.fd) != 0 && !x.write_errno && (errno == ENOSPC || errno == EDQUOT))
                x.write_errno = errno;
        }
        ever += x.got;
        if (d->hub) {
            char s[65];
            etag_sha256(x.linked_etag, s);
            if (!s[0]) etag_sha256(x.first_etag, s);
            if (s[0]) fetch_fmt(header_sha, sizeof header_sha, "%s", s);
        }
        if (x.write_errno) {
            int e = x.write_errno;
            if (e == ENOSPC || e == EDQUOT)
                fetch_fmt(err, errlen,
                         "disk full: writing %s failed (%s) after %lld bytes; free some space "
                         "(or set BILORA_HOME / --home to a bigger disk) and rerun: the partial "
                         "file is kept and resumes",
                         part, strerror(e), (long long)(x.have + x.got));
            else
                fetch_fmt(err, errlen, "cannot write %s: %s", part, strerror(e));
            return FE_DISK;
        }
        if (x.range_mismatch) {
            fetch_fmt(err, errlen,
                     "%s: asked for bytes %lld- but the server sent a range starting at %lld; "
                     "delete %s and rerun",
                     d->url, (long long)have, (long long)x.cr_start, part);
            return FE_OTHER;
        }
        if (is_network_error(rc) && ever == 0) {
            network_error(d->url, d->via, rc, errbuf, err, errlen);
            return FE_NETWORK;
        }
        int dropped = is_drop(rc) || is_network_error(rc);
        if (rc == CURLE_OK) {
            if (x.status == 416 && have > 0) {
                /* Range not satisfiable: the .part is not a prefix of what
                 * the server has now. Start over. */
                unlink(part);
                if (restarted++) {
                    fetch_fmt(err, errlen, "%s: the server refuses ranges it should serve (HTTP 416)", d->url);
                    return FE_HTTP;
                }
                attempt--; /* not a failure of the network: this one is free */
                continue;
            }
            if (x.status >= 500) {
                dropped = 1; /* a server hiccup: worth a retry */
            } else if (x.status != 200 && x.status != 206) {
                return http_status_error(x.status, d->url, err, errlen);
            } else {
                int64_t total = xfer_total(&x, d->size);
                int64_t sz = x.have + x.got;
                if (total >= 0 && sz < total) {
                    dropped = 1; /* ended early without curl noticing */
                } else {
                    progress_draw(&prog, sz, 1);
                    FetchErr fe = finish(d, part, header_sha, d->sha256_seen, err, errlen);
                    if (fe == FE_OK) d->bytes = sz;
                    return fe;
                }
            }
        }
        if (!dropped) {
            fetch_fmt(err, errlen, "%s: %s", d->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
            return FE_OTHER;
        }
        int64_t sz = file_size(part);
        char at[32], tot[32];
        fetch_human((double)(sz > 0 ? sz : 0), at, sizeof at);
        int64_t total = xfer_total(&x, d->size);
        fetch_human((double)(total > 0 ? total : 0), tot, sizeof tot);
        if (prog.drew) fputc('\n', c->prog);
        if (attempt + 1 < attempts) {
            long wait = (long)c->backoff_ms << (attempt < 10 ? attempt : 10);
            if (c->msg)
                fprintf(c->msg,
                        "  %s: transfer dropped at %s of %s (%s); retrying in %.1f s, resuming "
                        "(retry %d of %d)\n",
                        label, at, total > 0 ? tot : "?",
                        x.status >= 500 ? "server error" : (errbuf[0] ? errbuf : curl_easy_strerror(rc)),
                        wait / 1000.0, attempt + 1, attempts - 1);
            if (c->msg) fflush(c->msg);
            sleep_ms(wait);
            continue;
        }
        fetch_fmt(err, errlen,
                 "download of %s dropped at %s of %s after %d attempt(s) (last: %s); the partial "
                 "file is kept at %s: rerun the same command to resume",
                 d->url, at, total > 0 ? tot : "?", attempts,
                 x.status >= 500 ? "server error" : (errbuf[0] ? errbuf : curl_easy_strerror(rc)), part);
        return FE_DROPPED;
    }
    fetch_fmt(err, errlen, "download of %s: gave up", d->url);
    return FE_DROPPED;
}

FetchErr fetch_get_memory(const FetchCtx *c, const char *url, int hub, const char *via, char **body,
                          size_t *len, char *err, size_t errlen) {
    *body = NULL;
    if (len) *len = 0;
    int attempts = 1 + (c->retries > 0 ? c->retries : 0);
    for (int attempt = 0; attempt < attempts; attempt++) {
        Xfer x = {.fd = -1, .clen = -1, .cr_start = -1, .cr_total = -1};
        char errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdrs = NULL;
        CURL *h = new_request(c, url, hub, &x, errbuf, &hdrs);
        if (!h) {
            fetch_fmt(err, errlen, "curl_easy_init failed");
            return FE_OTHER;
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mem_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        if (is_network_error(rc)) {
            free(x.mem);
            network_error(url, via, rc, errbuf, err, errlen);
            return FE_NETWORK;
        }
        int retry = is_drop(rc) || (rc == CURLE_OK && x.status >= 500);
        if (rc == CURLE_OK && !retry) {
            if (x.status != 200) {
                free(x.mem);
                return http_status_error(x.status, url, err, errlen);
            }
            if (!x.mem) {
                x.mem = calloc(1, 1);
                if (!x.mem) return FE_OTHER;
            }
            *body = x.mem;
            if (len) *len = x.mlen;
            return FE_OK;
        }
        free(x.mem);
        if (!retry) {
            fetch_fmt(err, errlen, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
            return FE_OTHER;
        }
        if (attempt + 1 < attempts) {
            sleep_ms((long)c->backoff_ms << (attempt < 10 ? attempt : 10));
            continue;
        }
        fetch_fmt(err, errlen, "%s: failed after %d attempt(s): %s", url, attempts,
                 rc == CURLE_OK ? "server error" : (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
        return FE_DROPPED;
    }
    return FE_DROPPED;
}
