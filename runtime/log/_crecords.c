/* runtime.log._crecords: compiled twins of the record batch readers and
 * writer. This file: the module, its errors, and key_values_into (table
 * recovery); _crecords_decode.c reads records into rows and columns,
 * _crecords_encode.c writes them.
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
#include "_crecords.h"

PyObject *crecords_CorruptRecordError;

PyObject *
crecords_add_int(int64_t a, int64_t b)
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

void
crecords_raise_corrupt(PyObject *message, PyObject *offset)
{
    if (message == NULL)
        return;
    PyObject *args = PyTuple_Pack(1, message);
    PyObject *kwargs = offset ? Py_BuildValue("{sO}", "offset", offset) : NULL;
    if (args && (kwargs || !offset)) {
        PyObject *exc = PyObject_Call(crecords_CorruptRecordError, args, kwargs);
        if (exc) {
            PyErr_SetObject(crecords_CorruptRecordError, exc);
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
    crecords_raise_corrupt(PyUnicode_FromString(status == LONG ? "varint longer than 10 bytes"
                                                               : "varint overflows 64 bits"),
                           NULL);
}

static void
raise_ends_inside(int64_t base_offset)
{
    PyObject *offset = PyLong_FromLongLong(base_offset);
    if (offset == NULL)
        return;
    crecords_raise_corrupt(PyUnicode_FromFormat("batch at offset %lld ends inside a record",
                                                (long long)base_offset),
                           offset);
    Py_DECREF(offset);
}

void
crecords_raise_read(int status, int64_t base_offset)
{
    if (status == END)
        raise_ends_inside(base_offset);
    else
        raise_varint(status);
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
    if (crecords_batch_range(&b) < 0)
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
                crecords_raise_corrupt(
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
        crecords_raise_read(status, base_offset);
        goto done;
    }
    result = PyLong_FromLong(record_count);
done:
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_rows", crecords_decode_rows, METH_VARARGS,
     "decode_rows(buf, start, stop, base_offset, base_ts, log_append_ts, record_count)\n"
     "The records in buf[start:stop] as (offset, timestamp_ms, key, value, headers) rows."},
    {"decode_columns", crecords_decode_columns, METH_VARARGS,
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
    crecords_CorruptRecordError = PyObject_GetAttrString(errors, "CorruptRecordError");
    Py_DECREF(errors);
    if (crecords_CorruptRecordError == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    /* records.py uses the module only when this matches the source it expects */
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", 1) < 0)
        Py_CLEAR(m);
    return m;
}
