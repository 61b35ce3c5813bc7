/*
 * ws4py._speedups: the compiled hot path of the protocol core.
 *
 * The twin of src/ws4py/protocol/_frames_py.py: same functions, same results,
 * same errors. Its docstring is the contract; tests/core runs against both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* XOR n bytes of src into dst with the repeated 4-byte key (dst[0] uses key[0]).
 * With track set, also return whether any byte written has its high bit set
 * (the ASCII test rides along with the unmasking: no second pass). */
static inline int
xor_mask_impl(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char key[4],
              const int track)
{
    Py_ssize_t i = 0;
    uint32_t k32;
    uint64_t k64, seen = 0; /* the OR of the bytes written, when tracked */
    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;
#if defined(__SSE2__)
    {
        __m128i k128 = _mm_set1_epi32((int)k32);
        __m128i acc = _mm_setzero_si128();
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), k128);
            __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 16)), k128);
            __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 32)), k128);
            __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 48)), k128);
            _mm_storeu_si128((__m128i *)(dst + i), a);
            _mm_storeu_si128((__m128i *)(dst + i + 16), b);
            _mm_storeu_si128((__m128i *)(dst + i + 32), c);
            _mm_storeu_si128((__m128i *)(dst + i + 48), d);
            if (track) {
                acc = _mm_or_si128(acc, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
            }
        }
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), k128);
            _mm_storeu_si128((__m128i *)(dst + i), a);
            if (track) {
                acc = _mm_or_si128(acc, a);
            }
        }
        if (track && _mm_movemask_epi8(acc)) {
            seen = 0x80;
        }
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
        seen |= w;
    }
    /* i is a multiple of 4 here, so the key phase is back at 0. */
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[i & 3];
        seen |= dst[i];
    }
    return track && (seen & 0x8080808080808080ULL) != 0;
}

static void
xor_mask(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char key[4])
{
    xor_mask_impl(dst, src, n, key, 0);
}

static const unsigned char no_mask[4] = {0, 0, 0, 0};

/* Whether n bytes of UTF-8 text are valid, whole (defined with utf8_check, below). */
static int utf8_valid(const unsigned char *src, Py_ssize_t n);

/* The payload of a whole text frame, validated in the pass that unmasks it:
 * with as_str, a str when it is ASCII (made straight from the wire bytes,
 * unmasked on the way), else the unmasked bytes. ASCII needs no other pass;
 * other text is then checked once (utf8_valid). Sets *invalid (and returns
 * NULL without an exception) when the text is not UTF-8. */
static PyObject *
text_payload(const unsigned char *src, Py_ssize_t n, const unsigned char *key, int as_str, int *invalid)
{
    PyObject *out;
    unsigned char *data;
    int wide;
    *invalid = 0;
    if (as_str) {
        out = PyUnicode_New(n, 127);
        if (out == NULL) {
            return NULL;
        }
        data = PyUnicode_1BYTE_DATA(out);
    } else {
        out = PyBytes_FromStringAndSize(NULL, n);
        if (out == NULL) {
            return NULL;
        }
        data = (unsigned char *)PyBytes_AS_STRING(out);
    }
    wide = xor_mask_impl(data, src, n, key ? key : no_mask, 1);
    if (!wide) {
        return out;
    }
    if (as_str) {
        /* Not ASCII: the str was only scratch space, never seen by anyone. */
        PyObject *raw = PyBytes_FromStringAndSize((const char *)data, n);
        Py_DECREF(out);
        if (raw == NULL) {
            return NULL;
        }
        out = raw;
    }
    if (!utf8_valid((const unsigned char *)PyBytes_AS_STRING(out), n)) {
        Py_DECREF(out);
        *invalid = 1;
        return NULL;
    }
    return out;
}

/* A new bytes object holding src (length n) XORed with key. */
static PyObject *
masked_bytes(const unsigned char *src, Py_ssize_t n, const unsigned char key[4])
{
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) {
        return NULL;
    }
    xor_mask((unsigned char *)PyBytes_AS_STRING(out), src, n, key);
    return out;
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask_key) -> bytes\n\n"
"Return data XORed with the repeated 4-byte mask_key.");

static PyObject *
apply_mask(PyObject *self, PyObject *args)
{
    Py_buffer data, key;
    PyObject *out;
    if (!PyArg_ParseTuple(args, "y*y*:apply_mask", &data, &key)) {
        return NULL;
    }
    if (key.len != 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "mask_key must be 4 bytes");
        return NULL;
    }
    out = masked_bytes((const unsigned char *)data.buf, data.len, (const unsigned char *)key.buf);
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return out;
}

static PyObject *
parse_result(PyObject *frames, Py_ssize_t pos, int code, const char *reason)
{
    PyObject *error;
    if (code) {
        error = Py_BuildValue("(is)", code, reason);
        if (error == NULL) {
            Py_DECREF(frames);
            return NULL;
        }
    } else {
        error = Py_NewRef(Py_None);
    }
    return Py_BuildValue("(NnN)", frames, pos, error);
}

PyDoc_STRVAR(parse_frames_doc,
"parse_frames(buf, pos, expect_mask, allowed_rsv, max_frame_size, ascii_text_as_str=False)\n"
"    -> (frames, pos, error)\n\n"
"Parse every complete frame of buf from pos; see ws4py.protocol._frames_py.");

static PyObject *
parse_frames(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    int expect_mask;
    unsigned int allowed_rsv;
    unsigned long long max_frame_size;
    int text_as_str = 0;
    PyObject *frames, *result;
    const unsigned char *buf;
    Py_ssize_t end;
    int code = 0;
    char reason[96];

    if (!PyArg_ParseTuple(args, "y*npIK|p:parse_frames", &view, &pos, &expect_mask,
                          &allowed_rsv, &max_frame_size, &text_as_str)) {
        return NULL;
    }
    buf = (const unsigned char *)view.buf;
    end = view.len;
    if (pos < 0 || pos > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos out of range");
        return NULL;
    }
    frames = PyList_New(0);
    if (frames == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    reason[0] = '\0';
    while (end - pos >= 2) {
        unsigned char b0 = buf[pos], b1 = buf[pos + 1];
        unsigned int opcode = b0 & 0x0F;
        int masked = (b1 & 0x80) != 0;
        unsigned long long length = b1 & 0x7F;
        Py_ssize_t header = 2, start;
        PyObject *payload, *frame;

        if (b0 & 0x70 & ~allowed_rsv) {
            code = 1002;
            strcpy(reason, "reserved bits must be 0");
            break;
        }
        if (opcode > 0xA || (opcode > 2 && opcode < 8)) {
            code = 1002;
            snprintf(reason, sizeof reason, "reserved opcode %#x", opcode);
            break;
        }
        if (masked != (expect_mask != 0)) {
            code = 1002;
            strcpy(reason, expect_mask ? "a client must mask its frames"
                                       : "a server must not mask its frames");
            break;
        }
        if (opcode & 0x08) {
            if (!(b0 & 0x80)) {
                code = 1002;
                strcpy(reason, "control frames must not be fragmented");
                break;
            }
            if (length > 125) {
                code = 1002;
                strcpy(reason, "control frame payload over 125 bytes");
                break;
            }
        } else if (length == 126) {
            if (end - pos < 4) {
                break;
            }
            length = ((unsigned long long)buf[pos + 2] << 8) | buf[pos + 3];
            header = 4;
        } else if (length == 127) {
            int k;
            if (end - pos < 10) {
                break;
            }
            length = 0;
            for (k = 2; k < 10; k++) {
                length = (length << 8) | buf[pos + k];
            }
            if (length >> 63) {
                code = 1002;
                strcpy(reason, "frame length has its most significant bit set");
                break;
            }
            header = 10;
        }
        if (length > max_frame_size) {
            code = 1009;
            snprintf(reason, sizeof reason, "frame of %llu bytes exceeds the limit of %llu",
                     length, max_frame_size);
            break;
        }
        start = pos + header + (masked ? 4 : 0);
        if ((unsigned long long)(end - start) < length || end < start) {
            break;
        }
        if (b0 == 0x81) {
            int invalid;
            payload = text_payload(buf + start, (Py_ssize_t)length, masked ? buf + start - 4 : NULL,
                                   text_as_str, &invalid);
            if (invalid) {
                code = 1007;
                strcpy(reason, "invalid UTF-8 in a text message");
                break;
            }
        } else if (masked && length) {
            payload = masked_bytes(buf + start, (Py_ssize_t)length, buf + start - 4);
        } else {
            payload = PyBytes_FromStringAndSize((const char *)buf + start, (Py_ssize_t)length);
        }
        if (payload == NULL) {
            goto fail;
        }
        frame = PyTuple_New(2);
        if (frame == NULL) {
            Py_DECREF(payload);
            goto fail;
        }
        PyTuple_SET_ITEM(frame, 0, PyLong_FromLong(b0));
        PyTuple_SET_ITEM(frame, 1, payload);
        if (PyList_Append(frames, frame) < 0) {
            Py_DECREF(frame);
            goto fail;
        }
        Py_DECREF(frame);
        pos = start + (Py_ssize_t)length;
    }
    PyBuffer_Release(&view);
    result = parse_result(frames, pos, code, reason);
    return result;

fail:
    PyBuffer_Release(&view);
    Py_DECREF(frames);
    return NULL;
}

PyDoc_STRVAR(build_frame_doc,
"build_frame(first_byte, payload, mask_key) -> bytes\n\n"
"Serialise one frame; payload is bytes-like, or a str framed as its UTF-8\n"
"(an ASCII str straight from its own data); mask_key is 4 bytes or None.");

static PyObject *
build_frame(PyObject *self, PyObject *args)
{
    unsigned char b0;
    PyObject *payload_obj, *mask_obj, *out = NULL, *encoded = NULL;
    Py_buffer payload, key;
    int masked, have_buffer = 0;
    const unsigned char *src;
    Py_ssize_t n, header;
    unsigned char *p;

    if (!PyArg_ParseTuple(args, "bOO:build_frame", &b0, &payload_obj, &mask_obj)) {
        return NULL;
    }
    if (PyUnicode_Check(payload_obj)) {
        if (PyUnicode_IS_COMPACT_ASCII(payload_obj)) {
            /* An ASCII str is its own UTF-8: framed from its data, no encoded copy. */
            src = PyUnicode_1BYTE_DATA(payload_obj);
            n = PyUnicode_GET_LENGTH(payload_obj);
        } else {
            encoded = PyUnicode_AsUTF8String(payload_obj);
            if (encoded == NULL) {
                return NULL;
            }
            src = (const unsigned char *)PyBytes_AS_STRING(encoded);
            n = PyBytes_GET_SIZE(encoded);
        }
    } else {
        if (PyObject_GetBuffer(payload_obj, &payload, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        have_buffer = 1;
        src = (const unsigned char *)payload.buf;
        n = payload.len;
    }
    masked = mask_obj != Py_None;
    if (masked) {
        if (PyObject_GetBuffer(mask_obj, &key, PyBUF_SIMPLE) < 0) {
            masked = 0;
            goto done;
        }
        if (key.len != 4) {
            PyErr_SetString(PyExc_ValueError, "mask_key must be 4 bytes");
            goto done;
        }
    }
    header = n < 126 ? 2 : (n < 65536 ? 4 : 10);
    out = PyBytes_FromStringAndSize(NULL, header + (masked ? 4 : 0) + n);
    if (out == NULL) {
        goto done;
    }
    p = (unsigned char *)PyBytes_AS_STRING(out);
    p[0] = b0;
    if (n < 126) {
        p[1] = (unsigned char)n;
    } else if (n < 65536) {
        p[1] = 126;
        p[2] = (unsigned char)(n >> 8);
        p[3] = (unsigned char)n;
    } else {
        int k;
        unsigned long long len = (unsigned long long)n;
        p[1] = 127;
        for (k = 9; k >= 2; k--) {
            p[k] = (unsigned char)len;
            len >>= 8;
        }
    }
    p += header;
    if (masked) {
        PyBytes_AS_STRING(out)[1] |= (char)0x80;
        memcpy(p, key.buf, 4);
        xor_mask(p + 4, src, n, (const unsigned char *)key.buf);
    } else {
        memcpy(p, src, (size_t)n);
    }
done:
    if (masked) {
        PyBuffer_Release(&key);
    }
    if (have_buffer) {
        PyBuffer_Release(&payload);
    }
    Py_XDECREF(encoded);
    return out;
}

/* -- a str's UTF-8 as a buffer ---------------------------------------------
 *
 * An ASCII str's data is its UTF-8: a read-only buffer over it (that keeps the
 * str alive) lets a large text frame be written as header + the str itself. */

typedef struct {
    PyObject_HEAD
    PyObject *text; /* a compact ASCII str */
} AsciiBuffer;

static int
ascii_buffer_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    PyObject *text = ((AsciiBuffer *)self)->text;
    return PyBuffer_FillInfo(view, self, PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text), 1, flags);
}

static void
ascii_buffer_dealloc(PyObject *self)
{
    Py_XDECREF(((AsciiBuffer *)self)->text);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs ascii_buffer_as_buffer = {ascii_buffer_getbuffer, NULL};

static PyTypeObject AsciiBuffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws4py._speedups.AsciiBuffer",
    .tp_basicsize = sizeof(AsciiBuffer),
    .tp_dealloc = ascii_buffer_dealloc,
    .tp_as_buffer = &ascii_buffer_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The data of an ASCII str, as a read-only buffer.",
};

PyDoc_STRVAR(utf8_view_doc,
"utf8_view(text) -> memoryview | bytes\n\n"
"The UTF-8 of a str, to write: for an ASCII str a read-only memoryview of\n"
"the str's own data (no copy; it keeps the str alive), else its encoding.");

static PyObject *
utf8_view(PyObject *self, PyObject *text)
{
    AsciiBuffer *exporter;
    PyObject *view;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "utf8_view() takes a str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (!PyUnicode_IS_COMPACT_ASCII(text)) {
        return PyUnicode_AsUTF8String(text);
    }
    exporter = PyObject_New(AsciiBuffer, &AsciiBuffer_Type);
    if (exporter == NULL) {
        return NULL;
    }
    exporter->text = Py_NewRef(text);
    view = PyMemoryView_FromObject((PyObject *)exporter);
    Py_DECREF(exporter);
    return view;
}

/* -- UTF-8 validation ------------------------------------------------------
 *
 * A state is the incomplete sequence a chunk ended with, packed as
 * (count << 24) | first byte << 16 | second << 8 | third (count 0-3): the
 * same number whichever implementation made it, so the twins interoperate.
 */

typedef struct {
    int need;                 /* continuation bytes still expected */
    unsigned char lo, hi;     /* the range the next continuation byte must be in */
    int npend;
    unsigned char pend[3];    /* the incomplete sequence so far */
} utf8_state;

/* One byte; 0 if it may be followed by more, -1 if no valid text has this prefix. */
static int
utf8_step(utf8_state *st, unsigned char b)
{
    if (st->need == 0) {
        if (b < 0x80) {
            return 0;
        }
        st->npend = 1;
        st->pend[0] = b;
        st->lo = 0x80;
        st->hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            st->need = 1;
        } else if (b == 0xE0) {
            st->need = 2;
            st->lo = 0xA0;  /* no overlong 3-byte forms */
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
            st->need = 2;
        } else if (b == 0xED) {
            st->need = 2;
            st->hi = 0x9F;  /* no surrogates */
        } else if (b == 0xF0) {
            st->need = 3;
            st->lo = 0x90;  /* no overlong 4-byte forms */
        } else if (b >= 0xF1 && b <= 0xF3) {
            st->need = 3;
        } else if (b == 0xF4) {
            st->need = 3;
            st->hi = 0x8F;  /* nothing above U+10FFFF */
        } else {
            return -1;
        }
        return 0;
    }
    if (b < st->lo || b > st->hi) {
        return -1;
    }
    st->lo = 0x80;
    st->hi = 0xBF;
    if (--st->need == 0) {
        st->npend = 0;
    } else {
        st->pend[st->npend++] = b;
    }
    return 0;
}

/* Validate n bytes (unmasked on the fly with key when masked, key phase 0 at
 * src[0]) as the continuation of the text that left *st; 0, or -1 as soon as
 * no valid text has these bytes. ASCII runs go 16 bytes at a time. */
static long
utf8_run(utf8_state *st, const unsigned char *src, Py_ssize_t n, const unsigned char key[4], int masked)
{
    Py_ssize_t i = 0;
    uint32_t k32;
    uint64_t k64;
    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;
    while (i < n) {
        if (st->need == 0 && (i & 3) == 0) {
            /* ASCII runs (i & 3 == 0 keeps the key phase at 0). */
#if defined(__SSE2__)
            __m128i k128 = _mm_set1_epi32(masked ? (int)k32 : 0);
            while (i + 32 <= n) {
                __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), k128);
                __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 16)), k128);
                if (_mm_movemask_epi8(_mm_or_si128(a, b))) {
                    break;
                }
                i += 32;
            }
#endif
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, src + i, 8);
                if (masked) {
                    w ^= k64;
                }
                if (w & 0x8080808080808080ULL) {
                    break;
                }
                i += 8;
            }
            if (i >= n) {
                break;
            }
        }
        if (utf8_step(st, masked ? (unsigned char)(src[i] ^ key[i & 3]) : src[i]) < 0) {
            return -1;
        }
        i++;
    }
    return 0;
}

static int
utf8_valid(const unsigned char *src, Py_ssize_t n)
{
    utf8_state st = {0, 0x80, 0xBF, 0, {0, 0, 0}};
    return utf8_run(&st, src, n, no_mask, 0) == 0 && st.need == 0;
}

PyDoc_STRVAR(utf8_check_doc,
"utf8_check(data, state, mask_key=None, phase=0) -> int\n\n"
"Validate data as the continuation of UTF-8 text that left `state` (0 at\n"
"the start of a text), unmasking it on the fly with mask_key rotated by\n"
"phase when given. Return the new state (0: data ended on a character\n"
"boundary), or -1 as soon as no valid text can have these bytes.\n"
"Nothing is copied or decoded.");

/* From this many bytes on, utf8_check lets other threads run while it works. */
#define UTF8_CHECK_UNLOCKED 65536

static PyObject *
utf8_check(PyObject *self, PyObject *args)
{
    Py_buffer data;
    long state;
    PyObject *key_obj = Py_None;
    Py_ssize_t phase = 0;
    unsigned char key[4] = {0, 0, 0, 0};
    int masked = 0;
    utf8_state st = {0, 0x80, 0xBF, 0, {0, 0, 0}};
    const unsigned char *src;
    Py_ssize_t n;
    long result = 0;

    if (!PyArg_ParseTuple(args, "y*l|On:utf8_check", &data, &state, &key_obj, &phase)) {
        return NULL;
    }
    if (key_obj != Py_None) {
        Py_buffer kb;
        if (PyObject_GetBuffer(key_obj, &kb, PyBUF_SIMPLE) < 0) {
            PyBuffer_Release(&data);
            return NULL;
        }
        if (kb.len != 4) {
            PyBuffer_Release(&kb);
            PyBuffer_Release(&data);
            PyErr_SetString(PyExc_ValueError, "mask_key must be 4 bytes");
            return NULL;
        }
        for (int j = 0; j < 4; j++) {
            key[j] = ((const unsigned char *)kb.buf)[(phase + j) & 3];
        }
        PyBuffer_Release(&kb);
        masked = 1;
    }
    {
        int count = (int)((state >> 24) & 0xFF);
        if (state < 0 || count > 3) {
            PyBuffer_Release(&data);
            PyErr_SetString(PyExc_ValueError, "invalid UTF-8 state");
            return NULL;
        }
        for (int j = 0; j < count; j++) {
            if (utf8_step(&st, (unsigned char)(state >> (16 - 8 * j))) < 0 || st.need == 0) {
                PyBuffer_Release(&data);
                PyErr_SetString(PyExc_ValueError, "invalid UTF-8 state");
                return NULL;
            }
        }
    }
    src = (const unsigned char *)data.buf;
    n = data.len;
    {
        /* Other threads may run while a large text is checked; for a small one
         * giving up the GIL and taking it back would cost more than the check. */
        PyThreadState *saved = n >= UTF8_CHECK_UNLOCKED ? PyEval_SaveThread() : NULL;
        result = utf8_run(&st, src, n, key, masked);
        if (saved != NULL) {
            PyEval_RestoreThread(saved);
        }
    }
    PyBuffer_Release(&data);
    if (result == 0 && st.need != 0) {
        result = ((long)st.npend << 24) | ((long)st.pend[0] << 16);
        if (st.npend > 1) {
            result |= (long)st.pend[1] << 8;
        }
        if (st.npend > 2) {
            result |= (long)st.pend[2];
        }
    }
    return PyLong_FromLong(result);
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS, apply_mask_doc},
    {"parse_frames", parse_frames, METH_VARARGS, parse_frames_doc},
    {"build_frame", build_frame, METH_VARARGS, build_frame_doc},
    {"utf8_check", utf8_check, METH_VARARGS, utf8_check_doc},
    {"utf8_view", utf8_view, METH_O, utf8_view_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "ws4py._speedups",
    "The compiled hot path of ws4py's protocol core (twin of ws4py.protocol._frames_py).",
    -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&AsciiBuffer_Type) < 0) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
