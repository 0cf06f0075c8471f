/* Compiled twin of records.py _encode: the records part of a batch (magic 2).
 *
 * encode_records(records, offset_deltas) takes a list or tuple of (key,
 * value, timestamp_ms, headers) records, keys and values bytes, bytearray or
 * None, headers a tuple or list of (str, bytes | bytearray | None) pairs,
 * timestamps int64, and the offset delta of each record (None: its index).
 * It returns (batch, base_ts, max_ts): a bytearray of a zeroed 61-byte header
 * (records.py fills it in and computes the CRC) followed by the records, byte
 * for byte what _encode writes. For anything else (other types, timestamps
 * outside int64, a header key that is not UTF-8-encodable) it returns None
 * and the Python encoder, the reference, does the work and raises what it
 * raises.
 */
#include "_crecords.h"

#include <string.h>

#define HEADER_SIZE 61

static inline int
varint_size(uint64_t zz)
{
    int n = 1;
    while (zz > 0x7F) {
        zz >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *
put_varint(uint8_t *o, uint64_t zz)
{
    while (zz > 0x7F) {
        *o++ = (uint8_t)((zz & 0x7F) | 0x80);
        zz >>= 7;
    }
    *o++ = (uint8_t)zz;
    return o;
}

static inline uint64_t
zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

typedef struct {
    const char *key, *value;
    Py_ssize_t key_len, value_len; /* -1: None */
    int64_t ts, delta;
    PyObject **headers; /* the items of a tuple or list, or NULL */
    Py_ssize_t header_count;
    Py_ssize_t body;
} Rec;

/* bytes, bytearray or None into (pointer, length or -1); 0, or -1: not ours. */
static inline int
blob(PyObject *o, const char **p, Py_ssize_t *len)
{
    if (o == Py_None) {
        *p = NULL;
        *len = -1;
    }
    else if (PyBytes_CheckExact(o)) {
        *p = PyBytes_AS_STRING(o);
        *len = PyBytes_GET_SIZE(o);
    }
    else if (PyByteArray_CheckExact(o)) {
        *p = PyByteArray_AS_STRING(o);
        *len = PyByteArray_GET_SIZE(o);
    }
    else {
        return -1;
    }
    return 0;
}

static inline Py_ssize_t
blob_size(Py_ssize_t len)
{
    return len < 0 ? 1 : varint_size(zigzag(len)) + len;
}

/* The bytes the headers take (count varint included), or -1: not ours
 * (an error may be set: the caller clears it). */
static Py_ssize_t
headers_size(Rec *r)
{
    if (r->headers == NULL)
        return 1;
    Py_ssize_t size = varint_size(zigzag(r->header_count));
    for (Py_ssize_t h = 0; h < r->header_count; h++) {
        PyObject *pair = r->headers[h];
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)))
            return -1;
        Py_ssize_t klen, vlen;
        const char *v;
        if (PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &klen) == NULL ||
            blob(PyTuple_GET_ITEM(pair, 1), &v, &vlen) < 0)
            return -1;
        size += varint_size(zigzag(klen)) + klen + blob_size(vlen);
    }
    return size;
}

static uint8_t *
put_blob(uint8_t *o, const char *p, Py_ssize_t len)
{
    if (len < 0) {
        *o++ = 1; /* zigzag(-1) */
        return o;
    }
    o = put_varint(o, zigzag(len));
    memcpy(o, p, (size_t)len);
    return o + len;
}

static uint8_t *
put_headers(uint8_t *o, Rec *r)
{
    if (r->headers == NULL) {
        *o++ = 0;
        return o;
    }
    o = put_varint(o, zigzag(r->header_count));
    for (Py_ssize_t h = 0; h < r->header_count; h++) {
        PyObject *pair = r->headers[h];
        Py_ssize_t klen = 0, vlen = -1;
        const char *k = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &klen), *v = NULL;
        blob(PyTuple_GET_ITEM(pair, 1), &v, &vlen); /* checked by headers_size */
        o = put_blob(o, k, klen);
        o = put_blob(o, v, vlen);
    }
    return o;
}

/* Fill r from a (key, value, timestamp_ms, headers) record; -1: not ours. */
static int
read_out_record(PyObject *item, Rec *r)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 4)
        return -1;
    if (blob(PyTuple_GET_ITEM(item, 0), &r->key, &r->key_len) < 0 ||
        blob(PyTuple_GET_ITEM(item, 1), &r->value, &r->value_len) < 0)
        return -1;
    PyObject *ts = PyTuple_GET_ITEM(item, 2), *headers = PyTuple_GET_ITEM(item, 3);
    int overflow;
    if (!PyLong_Check(ts))
        return -1;
    r->ts = PyLong_AsLongLongAndOverflow(ts, &overflow);
    if (overflow || (r->ts == -1 && PyErr_Occurred()))
        return -1;
    r->headers = NULL;
    r->header_count = 0;
    if (headers == Py_None)
        return 0;
    if (PyTuple_CheckExact(headers) || PyList_CheckExact(headers)) {
        if (PySequence_Fast_GET_SIZE(headers) > 0) {
            r->headers = PySequence_Fast_ITEMS(headers);
            r->header_count = PySequence_Fast_GET_SIZE(headers);
        }
        return 0;
    }
    return -1;
}

/* Offset deltas: None (the index) or a list of int64. */
static int
read_delta(PyObject *deltas, Py_ssize_t i, Rec *r)
{
    if (deltas == Py_None) {
        r->delta = i;
        return 0;
    }
    int overflow;
    PyObject *d = PyList_GET_ITEM(deltas, i);
    if (!PyLong_Check(d))
        return -1;
    r->delta = PyLong_AsLongLongAndOverflow(d, &overflow);
    return overflow || (r->delta == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* Sizes of every record; the records' total, or -1: not ours. */
static Py_ssize_t
measure(Rec *recs, Py_ssize_t n, int64_t base_ts)
{
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Rec *r = &recs[i];
        Py_ssize_t hsize = headers_size(r);
        if (hsize < 0)
            return -1;
        uint64_t ts_delta = (uint64_t)r->ts - (uint64_t)base_ts;
        if (ts_delta > (uint64_t)INT64_MAX)
            return -1; /* Python writes a wider varint: let it */
        r->body = 1 + varint_size(zigzag((int64_t)ts_delta)) + varint_size(zigzag(r->delta)) +
                  blob_size(r->key_len) + blob_size(r->value_len) + hsize;
        total += varint_size(zigzag(r->body)) + r->body;
    }
    return total;
}

PyObject *
crecords_encode_records(PyObject *self, PyObject *args)
{
    PyObject *records, *deltas;
    if (!PyArg_ParseTuple(args, "OO", &records, &deltas))
        return NULL;
    if (!PyList_CheckExact(records) && !PyTuple_CheckExact(records))
        Py_RETURN_NONE; /* iterating another sequence could consume it */
    PyObject *seq = PySequence_Fast(records, "records must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq), *result = NULL;
    Rec *recs = n > 0 ? PyMem_Malloc((size_t)n * sizeof(Rec)) : NULL;
    if (n == 0 || (deltas != Py_None && (!PyList_CheckExact(deltas) ||
                                         PyList_GET_SIZE(deltas) != n))) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (recs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t base_ts = INT64_MAX, max_ts = INT64_MIN;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (read_out_record(items[i], &recs[i]) < 0 || read_delta(deltas, i, &recs[i]) < 0)
            goto not_ours;
        if (recs[i].ts < base_ts)
            base_ts = recs[i].ts;
        if (recs[i].ts > max_ts)
            max_ts = recs[i].ts;
    }
    Py_ssize_t total = measure(recs, n, base_ts);
    if (total < 0)
        goto not_ours;
    PyObject *out = PyByteArray_FromStringAndSize(NULL, HEADER_SIZE + total);
    if (out == NULL)
        goto done;
    uint8_t *o = (uint8_t *)PyByteArray_AS_STRING(out);
    memset(o, 0, HEADER_SIZE);
    o += HEADER_SIZE;
    for (Py_ssize_t i = 0; i < n; i++) {
        Rec *r = &recs[i];
        o = put_varint(o, zigzag(r->body));
        *o++ = 0; /* record attributes */
        o = put_varint(o, zigzag((int64_t)((uint64_t)r->ts - (uint64_t)base_ts)));
        o = put_varint(o, zigzag(r->delta));
        o = put_blob(o, r->key, r->key_len);
        o = put_blob(o, r->value, r->value_len);
        o = put_headers(o, r);
    }
    result = Py_BuildValue("(NLL)", out, (long long)base_ts, (long long)max_ts);
    goto done;
not_ours:
    PyErr_Clear();
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(recs);
    Py_DECREF(seq);
    return result;
}
