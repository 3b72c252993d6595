/* safetensors reader and writer (https://huggingface.co/docs/safetensors).
 *
 * The reader validates everything before use: the 8-byte header length
 * against the file size, the header JSON, every tensor's dtype, shape,
 * data_offsets (inside the data area, end - begin == numel * dtype size, no
 * overlap). F32, F16 and BF16 (and the integer/F64 buffer types) are
 * accepted and converted to fp32 on read.
 * Fallible functions return 0 / -1 with a message in err naming the file,
 * the tensor and what was expected. */
#ifndef BILORA_ENGINE_SAFETENSORS_H
#define BILORA_ENGINE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

/* Floats are what models are made of; the integer and F64 types appear in
 * real checkpoints as buffers (BERT's embeddings.position_ids is I64), so
 * they are accepted and converted too. */
typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t begin, end;      /* byte offsets within the data area */
} StTensor;

typedef struct {
    char *path;
    size_t file_size;
    size_t header_len;      /* the JSON header's length */
    uint64_t header_hash;   /* FNV-1a 64 of the header bytes (model identity) */
    int n;
    StTensor *tensors;
    char *metadata_json;    /* "__metadata__" object as JSON text, or NULL */
    unsigned char *data;    /* the data area (file contents after the header) */
} SafeTensors;

int st_open(SafeTensors *st, const char *path, char *err, size_t errlen);
void st_close(SafeTensors *st);
const StTensor *st_find(const SafeTensors *st, const char *name);
/* Converts to fp32 into dst (numel floats). */
void st_read_f32(const SafeTensors *st, const StTensor *t, float *dst);

typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} StWriteTensor;

/* Writes an F32 safetensors file (keys sorted, header padded to 8 bytes)
 * to path via a temporary file and rename. metadata: NULL or pairs of
 * strings {key0, value0, key1, value1, ..., NULL}. */
int st_write_f32(const char *path, const StWriteTensor *ts, int n, const char *const *metadata,
                 char *err, size_t errlen);

#endif
