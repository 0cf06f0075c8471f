/* Records of a batch into rows or columns (record_rows.py _decode_rows is the
 * reference; see _crecords.c for the invariants every reader keeps). */
#include "_crecords.h"

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
        crecords_raise_corrupt(PyUnicode_FromFormat("record claims %lld headers in %zd bytes",
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
            crecords_raise_corrupt(
                PyUnicode_FromFormat("record header key length %lld is invalid", (long long)klen),
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
            crecords_raise_corrupt(
                PyUnicode_FromFormat("record header key is not UTF-8: %S", value), NULL);
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
        PyObject *offset = crecords_add_int(base_offset, f->offset_delta);
        if (offset == NULL)
            return -1;
        crecords_raise_corrupt(
            PyUnicode_FromFormat("record at offset %S has a wrong length", offset), NULL);
        Py_DECREF(offset);
        return -1;
    }
    *p = i;
    return 0;
fail:
    crecords_raise_read(status, base_offset);
    return -1;
}

int
crecords_batch_range(Batch *b)
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
    PyObject *ts = crecords_add_int(b->base_ts, delta);
    if (ts == NULL)
        return NULL;
    Py_XSETREF(*last, Py_NewRef(ts));
    *last_delta = delta;
    return ts;
}

PyObject *
crecords_decode_rows(PyObject *self, PyObject *args)
{
    Batch b;
    if (!PyArg_ParseTuple(args, "y*nnLLOi", &b.buf, &b.start, &b.stop, &b.base_offset,
                          &b.base_ts, &b.log_append_ts, &b.record_count))
        return NULL;
    PyObject *rows = NULL, *last_ts = NULL;
    int64_t last_delta = 0;
    if (crecords_batch_range(&b) < 0)
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
        PyObject *offset = crecords_add_int(b.base_offset, f.offset_delta);
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

PyObject *
crecords_decode_columns(PyObject *self, PyObject *args)
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
    int failed = crecords_batch_range(&b);
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
            crecords_add_int(b.base_offset, f.offset_delta),
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
