/* Shared by the _crecords sources (one extension, runtime.log._crecords):
 * read status codes, the varint reader, slicing and the errors they raise. */
#ifndef STREAMS_CRECORDS_H
#define STREAMS_CRECORDS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

extern PyObject *crecords_CorruptRecordError; /* runtime.errors.CorruptRecordError */

enum { OK = 0, END = 1, LONG = 2, OVER = 3 };

/* Zigzag varint at d[*p] (at most 10 bytes, at most 64 bits), as record_rows.py
 * _read_varint. */
static inline int
read_varint(const uint8_t *d, Py_ssize_t n, Py_ssize_t *p, int64_t *out)
{
    Py_ssize_t i = *p;
    if (i >= n)
        return END;
    uint64_t b = d[i];
    uint64_t result;
    if (b < 0x80) {
        result = b;
    }
    else {
        result = b & 0x7F;
        int shift = 7;
        for (;;) {
            if (++i >= n)
                return END;
            b = d[i];
            if (shift == 63) {
                if (b & 0x80)
                    return LONG;
                if (b > 1)
                    return OVER;
                result |= b << 63;
                break;
            }
            result |= (b & 0x7F) << shift;
            if (b < 0x80)
                break;
            shift += 7;
        }
    }
    *out = (int64_t)(result >> 1) ^ -(int64_t)(result & 1);
    *p = i + 1;
    return OK;
}

/* p + len, or n + 1 (past the end) when that is beyond n; len >= 0, p <= n. */
static inline Py_ssize_t
advance(Py_ssize_t p, int64_t len, Py_ssize_t n)
{
    return len > (int64_t)(n - p) ? n + 1 : p + (Py_ssize_t)len;
}

static inline PyObject *
slice_bytes(const uint8_t *d, Py_ssize_t p, int64_t len, Py_ssize_t n)
{
    Py_ssize_t stop = advance(p, len, n);
    if (stop > n)
        stop = n;
    return PyBytes_FromStringAndSize((const char *)d + p, stop - p);
}

/* The arguments every reader takes: the records are buf[start:stop]. */
typedef struct {
    Py_buffer buf;
    Py_ssize_t start, stop;
    long long base_offset, base_ts;
    PyObject *log_append_ts; /* None: CreateTime */
    int record_count;
} Batch;

/* Clamp start and stop into the buffer as a slice would; -1 (ValueError) for
 * a negative start. */
int crecords_batch_range(Batch *b);
/* a + b as a Python int, exact past int64. */
PyObject *crecords_add_int(int64_t a, int64_t b);
/* CorruptRecordError(message) or CorruptRecordError(message, offset=offset);
 * steals `message`. */
void crecords_raise_corrupt(PyObject *message, PyObject *offset);
/* Raise for a read that failed with `status` (END, LONG or OVER). */
void crecords_raise_read(int status, int64_t base_offset);

PyObject *crecords_decode_rows(PyObject *self, PyObject *args);     /* _crecords_decode.c */
PyObject *crecords_decode_columns(PyObject *self, PyObject *args);  /* _crecords_decode.c */
PyObject *crecords_encode_records(PyObject *self, PyObject *args);  /* _crecords_encode.c */

#endif
