/*
 * ws4py._fanout: one frame to many sockets in one call, the GIL released.
 *
 * The twin of ws4py.fanout's pure-Python send_each (same arguments, results
 * and errors); ws4py.fanout picks one, tests/asyncio/test_asyncio_fanout.py
 * runs both. Used by ws4py.asyncio.broadcast for the connections that have
 * nothing queued: a fan-out then costs one send() per connection and no
 * Python per connection beyond picking it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__unix__) || defined(__APPLE__)
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: Python ignores SIGPIPE anyway */
#endif

/* Fewer descriptors than this go through a small array on the stack. */
#define SMALL_FDS 64

PyDoc_STRVAR(send_each_doc,
"send_each(fds, data) -> list[tuple[int, int]]\n\n"
"Send data with one send() to each socket of fds (a list or tuple of file\n"
"descriptors, non-blocking), in order, without holding the GIL. Return\n"
"(index, sent) for each one that did not take all of data: sent is what it\n"
"took (0 when it was full or failed: the caller's transport meets the\n"
"error on its own write). A descriptor listed again after it came short is\n"
"not sent to again (reported with 0): its bytes stay in order. Raises\n"
"TypeError for a descriptor that is not an int, ValueError for a negative\n"
"one, before anything is sent.");

static PyObject *
send_each(PyObject *self, PyObject *args)
{
    PyObject *fds_obj, *seq, *result = NULL;
    Py_buffer data;
    int small_fds[SMALL_FDS];
    Py_ssize_t small_sent[SMALL_FDS];
    int *fds = small_fds;
    Py_ssize_t *sent = small_sent;
    Py_ssize_t n, i;
    int max_fd = -1;
    unsigned char *short_fds = NULL; /* a bit per descriptor that came short, made at the first one */

    if (!PyArg_ParseTuple(args, "Oy*:send_each", &fds_obj, &data)) {
        return NULL;
    }
    seq = PySequence_Fast(fds_obj, "fds must be a list or tuple of file descriptors");
    if (seq == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > SMALL_FDS) {
        fds = PyMem_Malloc((size_t)n * sizeof *fds);
        sent = PyMem_Malloc((size_t)n * sizeof *sent);
        if (fds == NULL || sent == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        long fd;
        if (!PyLong_Check(item)) {
            PyErr_Format(PyExc_TypeError, "a file descriptor is an int, not %.100s", Py_TYPE(item)->tp_name);
            goto done;
        }
        fd = PyLong_AsLong(item);
        if (fd == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (fd < 0 || fd > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "invalid file descriptor %ld", fd);
            goto done;
        }
        fds[i] = (int)fd;
        if (fds[i] > max_fd) {
            max_fd = fds[i];
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n; i++) {
        ssize_t r;
        int fd = fds[i];
        if (short_fds != NULL && (short_fds[fd >> 3] & (1u << (fd & 7)))) {
            sent[i] = 0; /* came short before: what follows waits behind it */
            continue;
        }
        do {
            r = send(fd, data.buf, (size_t)data.len, MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        sent[i] = r < 0 ? 0 : (Py_ssize_t)r;
        if (sent[i] < data.len) {
            if (short_fds == NULL) {
                short_fds = calloc((size_t)(max_fd >> 3) + 1, 1); /* no GIL: not PyMem */
            }
            if (short_fds == NULL) { /* no memory: send to none after this one */
                for (i++; i < n; i++) {
                    sent[i] = 0;
                }
                break;
            }
            short_fds[fd >> 3] |= (unsigned char)(1u << (fd & 7));
        }
    }
    free(short_fds);
    Py_END_ALLOW_THREADS
    result = PyList_New(0);
    if (result == NULL) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (sent[i] < data.len) {
            PyObject *pair = Py_BuildValue("(nn)", i, sent[i]);
            if (pair == NULL || PyList_Append(result, pair) < 0) {
                Py_XDECREF(pair);
                Py_CLEAR(result);
                goto done;
            }
            Py_DECREF(pair);
        }
    }
done:
    if (fds != small_fds) {
        PyMem_Free(fds);
    }
    if (sent != small_sent) {
        PyMem_Free(sent);
    }
    Py_DECREF(seq);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef fanout_methods[] = {
    {"send_each", send_each, METH_VARARGS, send_each_doc},
    {NULL, NULL, 0, NULL},
};
#else
static PyMethodDef fanout_methods[] = {
    {NULL, NULL, 0, NULL},
};
#endif

static struct PyModuleDef fanout_module = {
    PyModuleDef_HEAD_INIT, "ws4py._fanout",
    "One frame to many sockets in one call (twin of ws4py.fanout's pure-Python send_each).",
    -1, fanout_methods,
};

PyMODINIT_FUNC
PyInit__fanout(void)
{
    return PyModule_Create(&fanout_module);
}
