/* Tests for engine/safetensors: round trip, half/bfloat decoding against
 * known bit patterns, every class of malformed file, and the real LoRA
 * adapter from the paper's repository (via $BILORA_ASSETS). */
#include "engine/safetensors.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

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

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bilora_st_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) { rm_rf(tmpdir); }

static void tpath(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Writes a safetensors file by hand: the given header (with its length as
 * declared_len, or the true length when declared_len is 0) and raw data. */
static void write_raw(const char *path, const char *header, uint64_t declared_len,
                      const void *data, size_t dlen) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t n = declared_len ? declared_len : strlen(header);
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(n >> (8 * i));
    ck_assert_uint_eq(fwrite(lb, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(header, 1, strlen(header), f), strlen(header));
    if (dlen) ck_assert_uint_eq(fwrite(data, 1, dlen, f), dlen);
    fclose(f);
}

/* Opens a file that must fail, and checks the error names what it should. */
static void expect_error(const char *path, const char *want1, const char *want2) {
    SafeTensors st;
    char err[512] = "";
    int rc = st_open(&st, path, err, sizeof err);
    ck_assert_msg(rc == -1, "expected %s to be rejected", path);
    ck_assert_msg(strstr(err, path) != NULL, "error does not name the file: %s", err);
    ck_assert_msg(strstr(err, want1) != NULL, "error lacks '%s': %s", want1, err);
    if (want2) ck_assert_msg(strstr(err, want2) != NULL, "error lacks '%s': %s", want2, err);
    /* A failed open leaves a closed, zeroed struct; closing again is safe. */
    ck_assert_ptr_null(st.tensors);
    st_close(&st);
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- round trip ---- */

START_TEST(test_round_trip) {
    char path[512], err[512];
    tpath(path, sizeof path, "rt.safetensors");
    float w[6] = {1.0f, -2.5f, 3.25f, 1e-30f, -0.0f, 65504.0f};
    float b[3] = {0.1f, 0.2f, 0.3f};
    float s = 42.0f;
    StWriteTensor ts[4] = {
        {.name = "zeta.weight", .data = w, .ndim = 2, .shape = {2, 3}},
        {.name = "alpha.bias", .data = b, .ndim = 1, .shape = {3}},
        {.name = "scalar", .data = &s, .ndim = 0},
        {.name = "empty", .data = NULL, .ndim = 2, .shape = {0, 5}},
    };
    const char *meta[] = {"format", "pt", "note", "quote \" and \\ and\ttab", NULL};
    ck_assert_msg(st_write_f32(path, ts, 4, meta, err, sizeof err) == 0, "%s", err);

    /* Byte layout: header length a multiple of 8, padded with spaces, keys in
     * sorted order, __metadata__ present. */
    size_t flen;
    unsigned char *raw = read_file(path, &flen);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert_uint_eq(flen, 8 + hl + 4 * (6 + 3 + 1));
    char *hdr = strndup((const char *)raw + 8, hl);
    const char *pa = strstr(hdr, "\"alpha.bias\""), *pe = strstr(hdr, "\"empty\"");
    const char *ps = strstr(hdr, "\"scalar\""), *pz = strstr(hdr, "\"zeta.weight\"");
    ck_assert(pa && pe && ps && pz && pa < pe && pe < ps && ps < pz);
    ck_assert_ptr_nonnull(strstr(hdr, "__metadata__"));

    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(st.n, 4);
    ck_assert_uint_eq(st.header_len, hl);
    ck_assert_uint_eq(st.file_size, flen);
    ck_assert(st.header_hash == fnv1a64(raw + 8, hl));
    ck_assert_ptr_nonnull(st.metadata_json);
    ck_assert_ptr_nonnull(strstr(st.metadata_json, "\"format\":\"pt\""));
    ck_assert_ptr_nonnull(strstr(st.metadata_json, "quote \\\" and \\\\ and\\ttab"));

    const StTensor *t = st_find(&st, "zeta.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, ST_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert_int_eq(t->numel, 6);
    float got[6];
    st_read_f32(&st, t, got);
    ck_assert_mem_eq(got, w, sizeof w); /* bit-exact, -0.0 included */
    /* Data area 8-byte aligned in the file (header padded), so aligned in
     * memory too. */
    ck_assert_uint_eq(((uintptr_t)st.data) % 8, 0);

    t = st_find(&st, "alpha.bias");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->begin, 0); /* first key gets the first bytes */
    st_read_f32(&st, t, got);
    ck_assert_mem_eq(got, b, sizeof b);
    t = st_find(&st, "scalar");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(t->numel, 1);
    st_read_f32(&st, t, got);
    ck_assert(got[0] == 42.0f);
    t = st_find(&st, "empty");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->numel, 0);
    ck_assert_ptr_null(st_find(&st, "missing"));
    ck_assert_ptr_null(st_find(&st, "__metadata__"));
    uint64_t h1 = st.header_hash;
    st_close(&st);

    /* Writing the same tensors in another order gives the same file. */
    StWriteTensor rev[4] = {ts[3], ts[2], ts[1], ts[0]};
    char path2[512];
    tpath(path2, sizeof path2, "rt2.safetensors");
    ck_assert_msg(st_write_f32(path2, rev, 4, meta, err, sizeof err) == 0, "%s", err);
    size_t flen2;
    unsigned char *raw2 = read_file(path2, &flen2);
    ck_assert_uint_eq(flen, flen2);
    ck_assert_mem_eq(raw, raw2, flen);
    ck_assert_msg(st_open(&st, path2, err, sizeof err) == 0, "%s", err);
    ck_assert(st.header_hash == h1);
    st_close(&st);

    /* No temporary files left behind. */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            files++;
            ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "leftover %s", e->d_name);
        }
    closedir(d);
    ck_assert_int_eq(files, 2);
    free(raw);
    free(raw2);
    free(hdr);
}
END_TEST

START_TEST(test_write_no_metadata_and_overwrite) {
    char path[512], err[512];
    tpath(path, sizeof path, "nm.safetensors");
    float a[2] = {1, 2}, b2[2] = {3, 4};
    StWriteTensor t = {.name = "x", .data = a, .ndim = 1, .shape = {2}};
    ck_assert_msg(st_write_f32(path, &t, 1, NULL, err, sizeof err) == 0, "%s", err);
    t.data = b2; /* overwrite in place through rename */
    ck_assert_msg(st_write_f32(path, &t, 1, NULL, err, sizeof err) == 0, "%s", err);
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_null(st.metadata_json);
    float got[2];
    st_read_f32(&st, st_find(&st, "x"), got);
    ck_assert(got[0] == 3 && got[1] == 4);
    st_close(&st);

    /* Zero tensors is a valid (empty) file. */
    ck_assert_msg(st_write_f32(path, NULL, 0, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(st.n, 0);
    st_close(&st);
}
END_TEST

START_TEST(test_write_rejects_bad_input) {
    char path[512], err[512];
    tpath(path, sizeof path, "bad.safetensors");
    float a[2] = {1, 2};
    StWriteTensor dup[2] = {{.name = "x", .data = a, .ndim = 1, .shape = {2}},
                            {.name = "x", .data = a, .ndim = 1, .shape = {2}}};
    ck_assert_int_eq(st_write_f32(path, dup, 2, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'x' given twice"));
    StWriteTensor neg = {.name = "n", .data = a, .ndim = 1, .shape = {-1}};
    ck_assert_int_eq(st_write_f32(path, &neg, 1, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'n'"));
    StWriteTensor nul = {.name = "d", .data = NULL, .ndim = 1, .shape = {2}};
    ck_assert_int_eq(st_write_f32(path, &nul, 1, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "data is NULL"));
    StWriteTensor reserved = {.name = "__metadata__", .data = a, .ndim = 1, .shape = {2}};
    ck_assert_int_eq(st_write_f32(path, &reserved, 1, NULL, err, sizeof err), -1);
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing written */
    /* Unwritable directory: error names the path, nothing left behind. */
    ck_assert_int_eq(st_write_f32("/nonexistent-dir/x.safetensors", dup, 1, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x.safetensors"));
}
END_TEST

/* ---- F16 / BF16 decoding ---- */

START_TEST(test_f16_bf16_decoding) {
    /* Known IEEE half bit patterns and their exact values. */
    static const uint16_t h[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                 0x3555, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x8001};
    const float hv[] = {1.0f,
                        -2.0f,
                        65504.0f,
                        5.9604644775390625e-08f, /* 2^-24, smallest subnormal */
                        6.0975551605224609e-05f, /* largest subnormal, 1023 * 2^-24 */
                        6.103515625e-05f,        /* 2^-14, smallest normal */
                        0.333251953125f,
                        -0.0f,
                        INFINITY,
                        -INFINITY,
                        NAN,
                        -5.9604644775390625e-08f};
    /* bfloat16 is the top 16 bits of an fp32. */
    static const uint16_t bf[] = {0x3F80, 0xC040, 0x4049, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x8000};
    const float bv[] = {1.0f, -3.0f, 3.140625f, INFINITY, -INFINITY, NAN,
                        9.18354961579912115600575419705e-41f /* 2^-133 */, -0.0f};
    enum { NH = sizeof h / sizeof h[0], NB = sizeof bf / sizeof bf[0] };

    unsigned char data[2 * (NH + NB)];
    for (int i = 0; i < NH; i++) data[2 * i] = h[i] & 0xff, data[2 * i + 1] = h[i] >> 8;
    for (int i = 0; i < NB; i++)
        data[2 * NH + 2 * i] = bf[i] & 0xff, data[2 * NH + 2 * i + 1] = bf[i] >> 8;
    char header[512];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[%d,%d]}}",
             NH, 2 * NH, NB, 2 * NH, 2 * (NH + NB));
    char path[512], err[512];
    tpath(path, sizeof path, "half.safetensors");
    write_raw(path, header, 0, data, sizeof data);

    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    const StTensor *th = st_find(&st, "h"), *tb = st_find(&st, "b");
    ck_assert(th && tb);
    ck_assert_int_eq(th->dtype, ST_F16);
    ck_assert_int_eq(tb->dtype, ST_BF16);
    float got[NH > NB ? NH : NB];
    st_read_f32(&st, th, got);
    for (int i = 0; i < NH; i++) {
        if (isnan(hv[i])) ck_assert_msg(isnan(got[i]), "half 0x%04x: want nan got %g", h[i], got[i]);
        else ck_assert_msg(memcmp(&got[i], &hv[i], 4) == 0, "half 0x%04x: want %.9g got %.9g", h[i],
                           hv[i], got[i]);
    }
    st_read_f32(&st, tb, got);
    for (int i = 0; i < NB; i++) {
        if (isnan(bv[i])) ck_assert_msg(isnan(got[i]), "bf16 0x%04x: want nan got %g", bf[i], got[i]);
        else ck_assert_msg(memcmp(&got[i], &bv[i], 4) == 0, "bf16 0x%04x: want %.9g got %.9g",
                           bf[i], bv[i], got[i]);
    }
    st_close(&st);
}
END_TEST

/* Every one of the 65536 half patterns decodes to the float whose value it
 * denotes: checked against the definition (-1)^s * 2^(e-15) * (1 + m/1024),
 * or 2^-14 * m/1024 for subnormals. */
START_TEST(test_f16_exhaustive) {
    unsigned char *data = malloc(2 * 65536);
    for (int i = 0; i < 65536; i++) data[2 * i] = i & 0xff, data[2 * i + 1] = (unsigned char)(i >> 8);
    char path[512], err[512];
    tpath(path, sizeof path, "all.safetensors");
    write_raw(path, "{\"all\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}",
              0, data, 2 * 65536);
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    float *got = malloc(65536 * sizeof *got);
    st_read_f32(&st, st_find(&st, "all"), got);
    for (int i = 0; i < 65536; i++) {
        int s = i >> 15, e = (i >> 10) & 31, m = i & 1023;
        double v;
        if (e == 31) v = m ? NAN : INFINITY;
        else if (e == 0) v = ldexp(m, -24);
        else v = ldexp(1024 + m, e - 25);
        if (s) v = -v;
        if (isnan(v)) ck_assert_msg(isnan(got[i]), "0x%04x", i);
        else {
            ck_assert_msg(got[i] == (float)v && !signbit(got[i]) == !signbit(v), "0x%04x: %.9g vs %.9g",
                          i, got[i], v);
        }
    }
    /* NaN payload survives: quiet bit of 0x7E00 is the fp32 quiet bit. */
    uint32_t u;
    memcpy(&u, &got[0x7E00], 4);
    ck_assert_uint_eq(u, 0x7FC00000u);
    (void)bits_f32;
    st_close(&st);
    free(got);
    free(data);
}
END_TEST

/* ---- malformed files ---- */

START_TEST(test_bad_truncated) {
    char path[512];
    tpath(path, sizeof path, "short.safetensors");
    FILE *f = fopen(path, "wb");
    fwrite("\x10\x00\x00", 1, 3, f);
    fclose(f);
    expect_error(path, "too short", "8-byte");
    /* Empty file too. */
    f = fopen(path, "wb");
    fclose(f);
    expect_error(path, "too short", NULL);
    /* Missing file: names it. */
    tpath(path, sizeof path, "does-not-exist.safetensors");
    expect_error(path, "cannot open", NULL);
}
END_TEST

START_TEST(test_bad_header_length_past_eof) {
    char path[512];
    tpath(path, sizeof path, "hlen.safetensors");
    write_raw(path, "{}", 1000, NULL, 0);
    expect_error(path, "header length 1000", "past the end of the file");
    /* A huge length (garbage, e.g. a non-safetensors file) is caught too. */
    write_raw(path, "{}", 0xFFFFFFFFFFFFFF00ULL, NULL, 0);
    expect_error(path, "past the end of the file", NULL);
}
END_TEST

START_TEST(test_bad_non_json_header) {
    char path[512];
    tpath(path, sizeof path, "json.safetensors");
    write_raw(path, "{\"a\": {\"dtype\": \"F32\", ", 0, NULL, 0);
    expect_error(path, "not valid JSON", NULL);
    write_raw(path, "hello world, not json", 0, NULL, 0);
    expect_error(path, "not valid JSON", NULL);
    write_raw(path, "[1, 2, 3]  ", 0, NULL, 0);
    expect_error(path, "not an object", NULL);
    /* Header length shorter than the JSON leaves junk where data begins;
     * junk after the object inside the header is refused. */
    write_raw(path, "{} xx", 0, NULL, 0);
    expect_error(path, "trailing bytes", NULL);
}
END_TEST

START_TEST(test_bad_offsets_past_data) {
    char path[512];
    tpath(path, sizeof path, "off.safetensors");
    float d[2] = {1, 2};
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, d, 8);
    expect_error(path, "'w'", "past the end of the data area");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 0, d, 8);
    expect_error(path, "'w'", "begin > end");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 0, d, 8);
    expect_error(path, "'w'", "data_offsets");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 0, d, 8);
    expect_error(path, "'w'", "data_offsets");

    /* A real file cut short: the last tensor's offsets pass the end. */
    char err[512];
    float big[64] = {0};
    StWriteTensor ts[2] = {{.name = "a", .data = big, .ndim = 1, .shape = {32}},
                           {.name = "b", .data = big, .ndim = 2, .shape = {4, 8}}};
    ck_assert_msg(st_write_f32(path, ts, 2, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(truncate(path, 8 + 128 + 200), 0); /* header is < 128 bytes */
    SafeTensors st;
    ck_assert_int_eq(st_open(&st, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "'b'") && strstr(err, "past the end"), "%s", err);
}
END_TEST

START_TEST(test_bad_size_shape_mismatch) {
    char path[512];
    tpath(path, sizeof path, "mis.safetensors");
    float d[4] = {0};
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 0, d, 16);
    expect_error(path, "'w'", "expected 24");
    write_raw(path, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 0, d, 16);
    expect_error(path, "'w'", "expected 8");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 0, d, 16);
    expect_error(path, "'w'", "shape[1]");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,16]}}", 0, d, 16);
    expect_error(path, "'w'", "shape[0]");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}",
              0, d, 16);
    expect_error(path, "'w'", "9 dimensions");
    /* Dimensions whose product overflows 64 bits. */
    write_raw(path,
              "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,16]}}",
              0, d, 16);
    expect_error(path, "'w'", "overflow");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", 0, d, 16);
    expect_error(path, "'w'", "shape");
}
END_TEST

START_TEST(test_bad_overlap) {
    char path[512];
    tpath(path, sizeof path, "ovl.safetensors");
    float d[6] = {0};
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              0, d, 24);
    expect_error(path, "overlap", "'a'");
    /* Identical ranges (two names for one buffer) also overlap. */
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
              0, d, 24);
    expect_error(path, "overlap", NULL);
    /* Adjacent is fine; empty tensors overlap nothing. */
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              0, d, 24);
    SafeTensors st;
    char err[512];
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(st.n, 3);
    st_close(&st);
}
END_TEST

START_TEST(test_bad_unknown_dtype) {
    char path[512];
    tpath(path, sizeof path, "dt.safetensors");
    int64_t d[2] = {1, 2};
    write_raw(path,
              "{\"ok\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
              "\"ids\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,16]}}",
              0, d, 16);
    expect_error(path, "'ids'", "unsupported dtype 'C64'");
    write_raw(path, "{\"x\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,16]}}", 0, d, 16);
    expect_error(path, "'x'", "dtype");
}
END_TEST

START_TEST(test_bad_misc) {
    char path[512];
    tpath(path, sizeof path, "misc.safetensors");
    float d[2] = {0};
    write_raw(path,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}",
              0, d, 8);
    expect_error(path, "'a'", "twice");
    write_raw(path, "{\"__metadata__\":[1],\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
              0, d, 8);
    expect_error(path, "__metadata__", "object");
    write_raw(path, "{\"a\":[1,2]}", 0, d, 8);
    expect_error(path, "'a'", "object");
}
END_TEST

/* ---- the real adapter ---- */

/* First BILORA_ASSETS root holding rel; "" when the variable is unset. */
static int asset_path(const char *rel, char *out, size_t cap) {
    const char *env = getenv("BILORA_ASSETS");
    if (!env || !*env) return 0;
    char *copy = strdup(env), *save = NULL;
    int found = -1;
    for (char *r = strtok_r(copy, ":", &save); r; r = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", r, rel);
        if (access(out, R_OK) == 0) {
            found = 1;
            break;
        }
    }
    free(copy);
    return found;
}

START_TEST(test_real_lora_adapter) {
    char path[4096], err[512];
    int r = asset_path("models/lora-roberta-base-mnli/adapter_model.safetensors", path, sizeof path);
    if (r == 0) {
        fprintf(stderr, "test_real_lora_adapter: BILORA_ASSETS not set, skipped\n");
        return;
    }
    ck_assert_msg(r == 1, "BILORA_ASSETS is set but models/lora-roberta-base-mnli/"
                          "adapter_model.safetensors is in none of its roots");
    SafeTensors st;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(st.n, 52);
    ck_assert_uint_eq(st.header_len, 6248);
    ck_assert_uint_eq(st.file_size, 3557500);
    ck_assert_ptr_nonnull(st.metadata_json);
    ck_assert_ptr_nonnull(strstr(st.metadata_json, "\"lora_r\":\"8\""));
    ck_assert_ptr_nonnull(strstr(st.metadata_json, "\"lora_alpha\":\"16\""));

    size_t total = 0;
    for (int i = 0; i < st.n; i++) {
        ck_assert_int_eq(st.tensors[i].dtype, ST_F32);
        total += st.tensors[i].end - st.tensors[i].begin;
    }
    /* Contiguous offsets covering the whole data area (checked by the
     * README); with no overlap, the byte sizes must add up exactly. */
    ck_assert_uint_eq(total, st.file_size - 8 - st.header_len);

    float *buf = malloc(768 * 768 * sizeof *buf);
    for (int l = 0; l < 12; l++) {
        const char *proj[2] = {"query", "value"};
        for (int p = 0; p < 2; p++) {
            char name[128];
            snprintf(name, sizeof name, "roberta.encoder.layer.%d.attention.self.%s.lora_A", l, proj[p]);
            const StTensor *a = st_find(&st, name);
            ck_assert_msg(a != NULL, "missing %s", name);
            ck_assert_int_eq(a->ndim, 2);
            ck_assert_int_eq(a->shape[0], 8);
            ck_assert_int_eq(a->shape[1], 768);
            snprintf(name, sizeof name, "roberta.encoder.layer.%d.attention.self.%s.lora_B", l, proj[p]);
            const StTensor *b = st_find(&st, name);
            ck_assert_msg(b != NULL, "missing %s", name);
            ck_assert_int_eq(b->ndim, 2);
            ck_assert_int_eq(b->shape[0], 768);
            ck_assert_int_eq(b->shape[1], 8);
            /* Trained adapters: B is not the zero it was initialised to. */
            st_read_f32(&st, b, buf);
            double ss = 0;
            for (int i = 0; i < 768 * 8; i++) ss += (double)buf[i] * buf[i];
            ck_assert_msg(ss > 0 && isfinite(ss), "%s is zero or non-finite", name);
        }
    }
    const StTensor *t = st_find(&st, "classifier.dense.weight");
    ck_assert(t && t->ndim == 2 && t->shape[0] == 768 && t->shape[1] == 768);
    t = st_find(&st, "classifier.dense.bias");
    ck_assert(t && t->ndim == 1 && t->shape[0] == 768);
    t = st_find(&st, "classifier.out_proj.weight");
    ck_assert(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 768);
    t = st_find(&st, "classifier.out_proj.bias");
    ck_assert(t && t->ndim == 1 && t->shape[0] == 3);
    st_read_f32(&st, t, buf);
    for (int i = 0; i < 3; i++) ck_assert(isfinite(buf[i]));
    free(buf);

    /* The identity hash is stable across opens. */
    uint64_t h = st.header_hash;
    st_close(&st);
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    ck_assert(st.header_hash == h);
    st_close(&st);
}
END_TEST

/* Rewriting the real adapter through st_write_f32 reproduces every value. */
START_TEST(test_real_adapter_rewrite) {
    char path[4096], err[512], out[512];
    int r = asset_path("models/lora-roberta-base-mnli/adapter_model.safetensors", path, sizeof path);
    if (r == 0) return;
    ck_assert_int_eq(r, 1);
    SafeTensors st, st2;
    ck_assert_msg(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    StWriteTensor *ws = calloc((size_t)st.n, sizeof *ws);
    float **bufs = calloc((size_t)st.n, sizeof *bufs);
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.tensors[i];
        bufs[i] = malloc((size_t)t->numel * sizeof(float));
        st_read_f32(&st, t, bufs[i]);
        ws[i].name = t->name;
        ws[i].data = bufs[i];
        ws[i].ndim = t->ndim;
        memcpy(ws[i].shape, t->shape, sizeof t->shape);
    }
    tpath(out, sizeof out, "adapter.safetensors");
    const char *meta[] = {"format", "pt", NULL};
    ck_assert_msg(st_write_f32(out, ws, st.n, meta, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(st_open(&st2, out, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(st2.n, st.n);
    for (int i = 0; i < st.n; i++) {
        const StTensor *a = &st.tensors[i], *b = st_find(&st2, a->name);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(a->numel, b->numel);
        /* Keys are sorted in both, so even the offsets agree. */
        ck_assert_uint_eq(a->begin, b->begin);
        ck_assert_mem_eq(st.data + a->begin, st2.data + b->begin, a->end - a->begin);
        free(bufs[i]);
    }
    st_close(&st2);
    st_close(&st);
    free(bufs);
    free(ws);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_write_no_metadata_and_overwrite);
    tcase_add_test(tc, test_write_rejects_bad_input);
    tcase_add_test(tc, test_f16_bf16_decoding);
    tcase_add_test(tc, test_f16_exhaustive);
    tcase_add_test(tc, test_bad_truncated);
    tcase_add_test(tc, test_bad_header_length_past_eof);
    tcase_add_test(tc, test_bad_non_json_header);
    tcase_add_test(tc, test_bad_offsets_past_data);
    tcase_add_test(tc, test_bad_size_shape_mismatch);
    tcase_add_test(tc, test_bad_overlap);
    tcase_add_test(tc, test_bad_unknown_dtype);
    tcase_add_test(tc, test_bad_misc);
    tcase_add_test(tc, test_real_lora_adapter);
    tcase_add_test(tc, test_real_adapter_rewrite);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
