/* Compiled reader of the records part of a Kafka record batch (magic 2); the
 * encoder is _crecords_encode.c.
 *
 * The pure-Python readers in record_rows.py and key_values.py are the reference:
 * every function here returns what its Python twin returns and raises the same
 * CorruptRecordError (message and offset) at the same record, whatever the
 * bytes say. Invariants:
 * - no byte outside buf[start:stop] is read: every index is checked against
 *   the records' length before it is read, and lengths from the data are
 *   compared, never added, to positions (no overflow);
 * - a position past the end is only ever compared (Python's slices clamp and
 *   the next read fails), so it is held as n + 1;
 * - integers that can leave int64 (base + delta) go through Python ints.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *CorruptRecordError; /* runtime.errors.CorruptRecordError */

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

static PyObject *
add_int(int64_t a, int64_t b)
{
    int64_t sum;
    if (!__builtin_add_overflow(a, b, &sum))
        return PyLong_FromLongLong(sum);
    PyObject *x = PyLong_FromLongLong(a), *y = PyLong_FromLongLong(b), *r = NULL;
    if (x && y)
        r = PyNumber_Add(x, y);
    Py_XDECREF(x);
    Py_XDECREF(y);
    return r;
}

/* CorruptRecordError(message) or CorruptRecordError(message, offset=offset). */
static void
raise_corrupt(PyObject *message, PyObject *offset)
{
    if (message == NULL)
        return;
    PyObject *args = PyTuple_Pack(1, message);
    PyObject *kwargs = offset ? Py_BuildValue("{sO}", "offset", offset) : NULL;
    if (args && (kwargs || !offset)) {
        PyObject *exc = PyObject_Call(CorruptRecordError, args, kwargs);
        if (exc) {
            PyErr_SetObject(CorruptRecordError, exc);
            Py_DECREF(exc);
        }
    }
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_DECREF(message);
}

static void
raise_varint(int status)
{
    raise_corrupt(PyUnicode_FromString(status == LONG ? "varint longer than 10 bytes"
                                                      : "varint overflows 64 bits"),
                  NULL);
}

static void
raise_ends_inside(int64_t base_offset)
{
    PyObject *offset = PyLong_FromLongLong(base_offset);
    if (offset == NULL)
        return;
    raise_corrupt(PyUnicode_FromFormat("batch at offset %lld ends inside a record",
                                       (long long)base_offset),
                  offset);
    Py_DECREF(offset);
}

/* Raise for a read that failed with `status` (END, LONG or OVER). */
static void
raise_read(int status, int64_t base_offset)
{
    if (status == END)
        raise_ends_inside(base_offset);
    else
        raise_varint(status);
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

/* One record's fields: positions into the data, lengths < 0 for None. */
typedef struct {
    int64_t ts_delta;
    int64_t offset_delta;
    Py_ssize_t key_pos, value_pos;
    int64_t key_len, value_len;
    PyObject *headers; /* a new reference */
} Fields;

/* The headers at d[*p] (record_rows.py _read_headers): 0 and a tuple in *out, or
 * -1 with END/LONG/OVER in *status (0 when the error is already set). */
static int
read_headers(const uint8_t *d, Py_ssize_t n, Py_ssize_t *p, PyObject **out, int *status)
{
    int64_t count;
    Py_ssize_t i = *p;
    *status = read_varint(d, n, &i, &count);
    if (*status)
        return -1;
    if (count <= 0) {
        *out = PyTuple_New(0);
        *p = i;
        return *out ? 0 : -1;
    }
    if (count > (int64_t)((n - i) / 2)) {
        raise_corrupt(PyUnicode_FromFormat("record claims %lld headers in %zd bytes",
                                           (long long)count, n - i),
                      NULL);
        return -1;
    }
    PyObject *headers = PyTuple_New((Py_ssize_t)count);
    if (headers == NULL)
        return -1;
    for (Py_ssize_t h = 0; h < (Py_ssize_t)count; h++) {
        int64_t klen, vlen;
        if ((*status = read_varint(d, n, &i, &klen)))
            goto fail;
        if (klen < 0 || klen > (int64_t)(n - i)) {
            raise_corrupt(PyUnicode_FromFormat("record header key length %lld is invalid",
                                               (long long)klen),
                          NULL);
            goto fail;
        }
        PyObject *key = PyUnicode_DecodeUTF8((const char *)d + i, (Py_ssize_t)klen, NULL);
        if (key == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                goto fail;
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            raise_corrupt(PyUnicode_FromFormat("record header key is not UTF-8: %S", value),
                          NULL);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            goto fail;
        }
        i += (Py_ssize_t)klen;
        if ((*status = read_varint(d, n, &i, &vlen))) {
            Py_DECREF(key);
            goto fail;
        }
        PyObject *value;
        if (vlen < 0) {
            value = Py_NewRef(Py_None);
        }
        else {
            value = slice_bytes(d, i, vlen, n);
            i = advance(i, vlen, n);
        }
        PyObject *pair = value ? PyTuple_Pack(2, key, value) : NULL;
        Py_DECREF(key);
        Py_XDECREF(value);
        if (pair == NULL)
            goto fail;
        PyTuple_SET_ITEM(headers, h, pair);
    }
    *out = headers;
    *p = i;
    return 0;
fail:
    Py_DECREF(headers);
    return -1;
}

/* Parse the record at d[*p] (record_rows.py _decode_rows, one turn of its loop).
 * 0 with f filled, or -1 with an exception set. */
static int
read_record(const uint8_t *d, Py_ssize_t n, Py_ssize_t *p, int64_t base_offset, Fields *f)
{
    Py_ssize_t i = *p, end;
    int64_t length;
    int status;
    if ((status = read_varint(d, n, &i, &length)))
        goto fail;
    end = length < 0 ? -1 : advance(i, length, n);
    i += 1; /* the record's attributes */
    if ((status = read_varint(d, n, &i, &f->ts_delta)))
        goto fail;
    if ((status = read_varint(d, n, &i, &f->offset_delta)))
        goto fail;
    if ((status = read_varint(d, n, &i, &f->key_len)))
        goto fail;
    f->key_pos = i;
    if (f->key_len >= 0)
        i = advance(i, f->key_len, n);
    if ((status = read_varint(d, n, &i, &f->value_len)))
        goto fail;
    f->value_pos = i;
    if (f->value_len >= 0)
        i = advance(i, f->value_len, n);
    if (i >= n) {
        status = END;
        goto fail;
    }
    if (d[i] == 0) {
        i += 1;
        f->headers = PyTuple_New(0);
        if (f->headers == NULL)
            return -1;
    }
    else if (read_headers(d, n, &i, &f->headers, &status) < 0) {
        if (status)
            goto fail;
        return -1;
    }
    if (i != end || i > n) {
        Py_CLEAR(f->headers);
        PyObject *offset = add_int(base_offset, f->offset_delta);
        if (offset == NULL)
            return -1;
        raise_corrupt(PyUnicode_FromFormat("record at offset %S has a wrong length", offset),
                      NULL);
        Py_DECREF(offset);
        return -1;
    }
    *p = i;
    return 0;
fail:
    raise_read(status, base_offset);
    return -1;
}

/* Arguments shared by decode_rows and decode_columns. */
typedef struct {
    Py_buffer buf;
    Py_ssize_t start, stop;
    long long base_offset, base_ts;
    PyObject *log_append_ts; /* None: CreateTime */
    int record_count;
} Batch;

static int
batch_range(Batch *b)
{
    if (b->start < 0) {
        PyErr_SetString(PyExc_ValueError, "records start before the buffer");
        return -1;
    }
    if (b->start > b->buf.len)
        b->start = b->buf.len;
    if (b->stop > b->buf.len)
        b->stop = b->buf.len; /* as a slice: a short buffer ends the records early */
    if (b->stop < b->start)
        b->stop = b->start;
    return 0;
}

/* The timestamp of a record: the log-append time, the last one built when the
 * delta repeats (records of a batch often share one), or a new int. */
static PyObject *
timestamp(Batch *b, int64_t delta, int64_t *last_delta, PyObject **last)
{
    if (b->log_append_ts != Py_None)
        return Py_NewRef(b->log_append_ts);
    if (*last != NULL && delta == *last_delta)
        return Py_NewRef(*last);
    PyObject *ts = add_int(b->base_ts, delta);
    if (ts == NULL)
        return NULL;
    Py_XSETREF(*last, Py_NewRef(ts));
    *last_delta = delta;
    return ts;
}

static PyObject *
decode_rows(PyObject *self, PyObject *args)
{
    Batch b;
    if (!PyArg_ParseTuple(args, "y*nnLLOi", &b.buf, &b.start, &b.stop, &b.base_offset,
                          &b.base_ts, &b.log_append_ts, &b.record_count))
        return NULL;
    PyObject *rows = NULL, *last_ts = NULL;
    int64_t last_delta = 0;
    if (batch_range(&b) < 0)
        goto done;
    const uint8_t *d = (const uint8_t *)b.buf.buf + b.start;
    Py_ssize_t n = b.stop - b.start, p = 0;
    rows = PyList_New(0);
    for (int r = 0; rows && r < b.record_count; r++) {
        Fields f;
        if (read_record(d, n, &p, b.base_offset, &f) < 0) {
            Py_CLEAR(rows);
            break;
        }
        PyObject *row = PyTuple_New(5);
        PyObject *offset = add_int(b.base_offset, f.offset_delta);
        PyObject *ts = timestamp(&b, f.ts_delta, &last_delta, &last_ts);
        PyObject *key = f.key_len < 0 ? Py_NewRef(Py_None)
                                      : slice_bytes(d, f.key_pos, f.key_len, n);
        PyObject *value = f.value_len < 0 ? Py_NewRef(Py_None)
                                          : slice_bytes(d, f.value_pos, f.value_len, n);
        if (!row || !offset || !ts || !key || !value) {
            Py_XDECREF(row);
            Py_XDECREF(offset);
            Py_XDECREF(ts);
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(f.headers);
            Py_CLEAR(rows);
            break;
        }
        PyTuple_SET_ITEM(row, 0, offset);
        PyTuple_SET_ITEM(row, 1, ts);
        PyTuple_SET_ITEM(row, 2, key);
        PyTuple_SET_ITEM(row, 3, value);
        PyTuple_SET_ITEM(row, 4, f.headers);
        int failed = PyList_Append(rows, row);
        Py_DECREF(row);
        if (failed)
            Py_CLEAR(rows);
    }
done:
    Py_XDECREF(last_ts);
    PyBuffer_Release(&b.buf);
    return rows;
}

static PyObject *
decode_columns(PyObject *self, PyObject *args)
{
    Batch b;
    long long min_offset;
    PyObject *cols[5]; /* offsets, timestamps, keys, values, headers */
    if (!PyArg_ParseTuple(args, "y*nnLLOiLO!O!O!O!O!", &b.buf, &b.start, &b.stop,
                          &b.base_offset, &b.base_ts, &b.log_append_ts, &b.record_count,
                          &min_offset, &PyList_Type, &cols[0], &PyList_Type, &cols[1],
                          &PyList_Type, &cols[2], &PyList_Type, &cols[3], &PyList_Type,
                          &cols[4]))
        return NULL;
    Py_ssize_t before[5];
    for (int c = 0; c < 5; c++)
        before[c] = PyList_GET_SIZE(cols[c]);
    PyObject *last_ts = NULL;
    int64_t last_delta = 0;
    Py_ssize_t added = 0;
    int failed = batch_range(&b);
    const uint8_t *d = (const uint8_t *)b.buf.buf + b.start;
    Py_ssize_t n = b.stop - b.start, p = 0;
    for (int r = 0; !failed && r < b.record_count; r++) {
        Fields f;
        if (read_record(d, n, &p, b.base_offset, &f) < 0) {
            failed = 1;
            break;
        }
        /* base_offset + delta past int64 is above any min_offset, below it under */
        int64_t offset;
        int skip = __builtin_add_overflow((int64_t)b.base_offset, f.offset_delta, &offset)
                       ? f.offset_delta < 0
                       : offset < min_offset;
        if (skip) {
            Py_DECREF(f.headers);
            continue;
        }
        PyObject *row[5] = {
            add_int(b.base_offset, f.offset_delta),
            timestamp(&b, f.ts_delta, &last_delta, &last_ts),
            f.key_len < 0 ? Py_NewRef(Py_None) : slice_bytes(d, f.key_pos, f.key_len, n),
            f.value_len < 0 ? Py_NewRef(Py_None) : slice_bytes(d, f.value_pos, f.value_len, n),
            f.headers,
        };
        for (int c = 0; c < 5; c++) {
            if (!failed && (row[c] == NULL || PyList_Append(cols[c], row[c]) < 0))
                failed = 1;
            Py_XDECREF(row[c]);
        }
        added++;
    }
    Py_XDECREF(last_ts);
    PyBuffer_Release(&b.buf);
    if (failed) { /* the columns as they were: all of a batch or none of it */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        for (int c = 0; c < 5; c++)
            PyList_SetSlice(cols[c], before[c], PY_SSIZE_T_MAX, NULL);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    return PyLong_FromSsize_t(added);
}

/* One turn of key_values.py key_values_into's loop: skips a varint by its
 * continuation bits, as the Python does, with no length limit. */
static inline int
skip_varint(const uint8_t *d, Py_ssize_t n, Py_ssize_t *p)
{
    Py_ssize_t i = *p;
    while (i < n && (d[i] & 0x80))
        i++;
    if (i >= n)
        return END;
    *p = i + 1;
    return OK;
}

static PyObject *
key_values_into(PyObject *self, PyObject *args)
{
    PyObject *writes;
    Py_buffer buf;
    Py_ssize_t start, stop;
    long long base_offset;
    int record_count;
    if (!PyArg_ParseTuple(args, "O!y*nnLi", &PyDict_Type, &writes, &buf, &start, &stop,
                          &base_offset, &record_count))
        return NULL;
    Batch b = {.buf = buf, .start = start, .stop = stop};
    PyObject *result = NULL;
    if (batch_range(&b) < 0)
        goto done;
    const uint8_t *d = (const uint8_t *)buf.buf + b.start;
    Py_ssize_t n = b.stop - b.start, p = 0;
    for (int r = 0; r < record_count; r++) {
        int64_t length, klen, vlen;
        int status;
        if ((status = read_varint(d, n, &p, &length)))
            goto read_failed;
        Py_ssize_t end = length < 0 ? -1 : advance(p, length, n);
        p += 1; /* the record's attributes */
        if ((status = skip_varint(d, n, &p)) || (status = skip_varint(d, n, &p)) ||
            (status = read_varint(d, n, &p, &klen)))
            goto read_failed;
        Py_ssize_t key_pos = p;
        if (klen >= 0)
            p = advance(p, klen, n);
        if ((status = read_varint(d, n, &p, &vlen)))
            goto read_failed;
        Py_ssize_t value_pos = p;
        if (vlen >= 0)
            p = advance(p, vlen, n);
        if (p >= end || end > n) {
            PyObject *offset = PyLong_FromLongLong(base_offset);
            if (offset) {
                raise_corrupt(
                    PyUnicode_FromFormat("a record of the batch at offset %lld has a wrong length",
                                         base_offset),
                    offset);
                Py_DECREF(offset);
            }
            goto done;
        }
        if (klen >= 0) {
            PyObject *key = slice_bytes(d, key_pos, klen, n);
            PyObject *value = vlen < 0 ? Py_NewRef(Py_None) : slice_bytes(d, value_pos, vlen, n);
            int failed = !key || !value || PyDict_SetItem(writes, key, value) < 0;
            Py_XDECREF(key);
            Py_XDECREF(value);
            if (failed)
                goto done;
        }
        p = end; /* past the headers */
        continue;
    read_failed:
        raise_read(status, base_offset);
        goto done;
    }
    result = PyLong_FromLong(record_count);
done:
    PyBuffer_Release(&buf);
    return result;
}

PyObject *crecords_encode_records(PyObject *self, PyObject *args); /* _crecords_encode.c */

static PyMethodDef methods[] = {
    {"decode_rows", decode_rows, METH_VARARGS,
     "decode_rows(buf, start, stop, base_offset, base_ts, log_append_ts, record_count)\n"
     "The records in buf[start:stop] as (offset, timestamp_ms, key, value, headers) rows."},
    {"decode_columns", decode_columns, METH_VARARGS,
     "decode_columns(buf, start, stop, base_offset, base_ts, log_append_ts, record_count,\n"
     "               min_offset, offsets, timestamps, keys, values, headers)\n"
     "Append the records at or past min_offset to the five lists (all of the batch or,\n"
     "on an error, none of it); the number appended."},
    {"key_values_into", key_values_into, METH_VARARGS,
     "key_values_into(writes, buf, start, stop, base_offset, record_count)\n"
     "Put key -> value (None: a tombstone) of each keyed record into writes."},
    {"encode_records", crecords_encode_records, METH_VARARGS,
     "encode_records(records, offset_deltas)\n"
     "(batch, base_ts, max_ts): a zeroed header and the records, or None for input\n"
     "only the Python encoder handles."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "runtime.log._crecords",
    "Compiled twins of the record batch readers and writer in records.py and key_values.py.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__crecords(void)
{
    PyObject *errors = PyImport_ImportModule("runtime.errors");
    if (errors == NULL)
        return NULL;
    CorruptRecordError = PyObject_GetAttrString(errors, "CorruptRecordError");
    Py_DECREF(errors);
    if (CorruptRecordError == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    /* records.py uses the module only when this matches the source it expects */
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", 1) < 0)
        Py_CLEAR(m);
    return m;
}
