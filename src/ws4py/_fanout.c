/*
 * ws4py._fanout: one frame to many sockets in one call, the GIL released.
 *
 * The twin of ws4py.fanout's pure-Python Outlet and send_ready (same
 * arguments, results and errors); ws4py.fanout picks one,
 * tests/asyncio/test_asyncio_fanout.py runs both. Used by
 * ws4py.asyncio.broadcast: each connection keeps an Outlet whose fd is its
 * socket's only while a frame may be sent on it straight (see
 * ws4py.asyncio.writing.WriteSide.outlet), so a fan-out to thousands of
 * connections costs one send() each and no Python per connection.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#if defined(__unix__) || defined(__APPLE__)
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: Python ignores SIGPIPE anyway */
#endif

/* Fewer outlets than this go through small arrays on the stack. */
#define SMALL_COUNT 64

typedef struct {
    PyObject_HEAD
    int fd;
    PyObject *owed; /* NULL or None: nothing owed */
} Outlet;

static PyMemberDef outlet_members[] = {
    {"fd", T_INT, offsetof(Outlet, fd), 0,
     "The socket to send on straight, or -1 while a frame may not be sent on it straight."},
    {"owed", T_OBJECT, offsetof(Outlet, owed), 0,
     "None, or the frames owed to this socket (see ws4py.fanout.owe): they go before anything else."},
    {NULL, 0, 0, 0, NULL},
};

static int
outlet_init(Outlet *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", NULL};
    self->fd = -1;
    Py_CLEAR(self->owed);
    return PyArg_ParseTupleAndKeywords(args, kwds, "|i:Outlet", kwlist, &self->fd) ? 0 : -1;
}

static int
outlet_traverse(Outlet *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owed);
    return 0;
}

static int
outlet_clear(Outlet *self)
{
    Py_CLEAR(self->owed);
    return 0;
}

static void
outlet_dealloc(Outlet *self)
{
    PyObject_GC_UnTrack(self);
    outlet_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
outlet_repr(Outlet *self)
{
    return PyUnicode_FromFormat("<Outlet fd=%d>", self->fd);
}

PyDoc_STRVAR(outlet_doc,
"Outlet(fd=-1)\n\n"
"Where a fan-out may send a connection's frames straight: fd is the\n"
"socket's descriptor while nothing would go before them, else -1; owed is\n"
"None or what a fan-out owes the socket (see ws4py.fanout.send_ready,\n"
"owe and send_owed).");

static PyTypeObject OutletType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws4py._fanout.Outlet",
    .tp_basicsize = sizeof(Outlet),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = outlet_doc,
    .tp_traverse = (traverseproc)outlet_traverse,
    .tp_clear = (inquiry)outlet_clear,
    .tp_dealloc = (destructor)outlet_dealloc,
    .tp_members = outlet_members,
    .tp_init = (initproc)outlet_init,
    .tp_new = PyType_GenericNew,
    .tp_repr = (reprfunc)outlet_repr,
};

/* What an outlet owes (borrowed; NULL for nothing, None included), or ERROR_OWED with an exception set. */
static PyObject error_owed_marker;
#define ERROR_OWED (&error_owed_marker)

static PyObject *
outlet_owed(PyObject *item)
{
    PyObject *owed;
    if (Py_IS_TYPE(item, &OutletType)) {
        owed = ((Outlet *)item)->owed;
        return owed == Py_None ? NULL : owed;
    }
    owed = PyObject_GetAttrString(item, "owed");
    if (owed == NULL) {
        return ERROR_OWED;
    }
    Py_DECREF(owed); /* the outlet keeps it */
    return owed == Py_None ? NULL : owed;
}

static int
outlet_set_owed(PyObject *item, PyObject *owed)
{
    if (Py_IS_TYPE(item, &OutletType)) {
        Py_INCREF(owed);
        Py_XSETREF(((Outlet *)item)->owed, owed);
        return 0;
    }
    return PyObject_SetAttrString(item, "owed", owed);
}

/* The descriptor of an outlet (an Outlet, or any object with an int fd and an owed); -2 with an exception set. */
static int
outlet_fd(PyObject *item)
{
    PyObject *attr;
    long fd;
    if (Py_IS_TYPE(item, &OutletType)) {
        return ((Outlet *)item)->fd;
    }
    attr = PyObject_GetAttrString(item, "fd");
    if (attr == NULL) {
        return -2;
    }
    if (!PyLong_Check(attr)) {
        PyErr_Format(PyExc_TypeError, "an outlet's fd is an int, not %.100s", Py_TYPE(attr)->tp_name);
        Py_DECREF(attr);
        return -2;
    }
    fd = PyLong_AsLong(attr);
    Py_DECREF(attr);
    if (fd == -1 && PyErr_Occurred()) {
        return -2;
    }
    return fd < 0 ? -1 : fd > INT_MAX ? INT_MAX : (int)fd;
}

static int
outlet_close(PyObject *item)
{
    static PyObject *minus_one = NULL;
    if (Py_IS_TYPE(item, &OutletType)) {
        ((Outlet *)item)->fd = -1;
        return 0;
    }
    if (minus_one == NULL && (minus_one = PyLong_FromLong(-1)) == NULL) {
        return -1;
    }
    return PyObject_SetAttrString(item, "fd", minus_one);
}

/*
 * One send() of data to each outlet of outlets chosen: with tail NULL, each
 * ready one (fd not -1, nothing owed), the others reported as (index, -1);
 * with a tail, each one that owes it (which then owes nothing), the others
 * left out. Shorts are reported as (index, sent) and their outlets disarmed.
 */
static PyObject *
fan_out(PyObject *outlets_obj, Py_buffer *data, PyObject *tail)
{
    PyObject *seq, *result = NULL;
    int small_fds[SMALL_COUNT];
    Py_ssize_t small_sent[SMALL_COUNT];
    int *fds = small_fds;
    Py_ssize_t *sent = small_sent;
    Py_ssize_t n, i;
    int max_fd = -1;
    unsigned char *short_fds = NULL; /* a bit per descriptor that came short, made at the first one */
    const Py_ssize_t LEFT_OUT = -2;

    seq = PySequence_Fast(outlets_obj, "outlets must be a list or tuple");
    if (seq == NULL) {
        return NULL;
    }
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > SMALL_COUNT) {
        fds = PyMem_Malloc((size_t)n * sizeof *fds);
        sent = PyMem_Malloc((size_t)n * sizeof *sent);
        if (fds == NULL || sent == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *owed = outlet_owed(item);
        if (owed == ERROR_OWED) {
            goto done;
        }
        fds[i] = outlet_fd(item);
        if (fds[i] == -2) {
            goto done;
        }
        sent[i] = 0;
        if (tail == NULL) {
            if (owed != NULL) {
                fds[i] = -1; /* what it owes goes first */
            }
        }
        else if (owed != tail) {
            sent[i] = LEFT_OUT;
            fds[i] = -1;
        }
        if (fds[i] > max_fd) {
            max_fd = fds[i];
        }
    }
    if (tail != NULL) { /* each outlet chosen owes nothing from now on, sent or not */
        for (i = 0; i < n; i++) {
            if (sent[i] != LEFT_OUT && outlet_set_owed(PySequence_Fast_GET_ITEM(seq, i), Py_None) < 0) {
                goto done;
            }
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n; i++) {
        ssize_t r;
        if (sent[i] == LEFT_OUT) {
            continue;
        }
        if (fds[i] < 0 || (short_fds != NULL && (short_fds[fds[i] >> 3] & (1u << (fds[i] & 7))))) {
            sent[i] = -1; /* not ready, or listed again after it came short: its bytes stay in order */
            continue;
        }
        do {
            r = send(fds[i], data->buf, (size_t)data->len, MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        sent[i] = r < 0 ? 0 : (Py_ssize_t)r;
        if (sent[i] < data->len) {
            if (short_fds == NULL) {
                short_fds = calloc((size_t)(max_fd >> 3) + 1, 1); /* no GIL: not PyMem */
            }
            if (short_fds == NULL) { /* no memory: send to none after this one */
                for (i++; i < n; i++) {
                    if (sent[i] != LEFT_OUT) {
                        sent[i] = -1;
                    }
                }
                break;
            }
            short_fds[fds[i] >> 3] |= (unsigned char)(1u << (fds[i] & 7));
        }
    }
    free(short_fds);
    Py_END_ALLOW_THREADS
    result = PyList_New(0);
    if (result == NULL) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (sent[i] != LEFT_OUT && sent[i] < data->len) {
            PyObject *pair;
            if (sent[i] >= 0 && outlet_close(PySequence_Fast_GET_ITEM(seq, i)) < 0) {
                Py_CLEAR(result);
                goto done;
            }
            pair = Py_BuildValue("(nn)", i, sent[i]);
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
    return result;
}

PyDoc_STRVAR(send_ready_doc,
"send_ready(outlets, data) -> list[tuple[int, int]]\n\n"
"Send data with one send() to the socket of each ready outlet of outlets (a\n"
"list or tuple): fd not -1 and nothing owed; in order, without holding the\n"
"GIL. Return (index, sent) for each outlet that did not take all of data,\n"
"in order: sent is -1 for an outlet that was not ready (nothing sent), else\n"
"what its socket took (0 when it was full or failed: the caller's transport\n"
"meets the error on its own write). An outlet that came short is no longer\n"
"ready (its fd is set to -1): what follows waits behind its rest. Raises\n"
"TypeError for an outlet whose fd is not an int (AttributeError for one\n"
"without fd or owed), before anything is sent.");

/* send_ready(outlets, data) or, with_owed, send_owed(outlets, owed, data): their arguments, then fan_out. */
static PyObject *
fan_out_call(PyObject *args, int with_owed)
{
    PyObject *outlets, *owed = NULL, *result;
    Py_buffer data;
    if (with_owed ? !PyArg_ParseTuple(args, "OOy*:send_owed", &outlets, &owed, &data)
                  : !PyArg_ParseTuple(args, "Oy*:send_ready", &outlets, &data)) {
        return NULL;
    }
    if (owed == Py_None) {
        PyErr_SetString(PyExc_ValueError, "owed is what owe() gave the outlets, not None");
        result = NULL;
    }
    else {
        result = fan_out(outlets, &data, owed);
    }
    PyBuffer_Release(&data);
    return result;
}

static PyObject *
send_ready(PyObject *self, PyObject *args)
{
    return fan_out_call(args, 0);
}

PyDoc_STRVAR(send_owed_doc,
"send_owed(outlets, owed, data) -> list[tuple[int, int]]\n\n"
"What owe() promised: data (owed's frames, joined) with one send() to the\n"
"socket of each outlet of outlets that still owes owed, which then owes\n"
"nothing; the others (they paid meanwhile) are left out. Return (index,\n"
"sent) for each outlet that did not take all of data, as send_ready does.");

static PyObject *
send_owed(PyObject *self, PyObject *args)
{
    return fan_out_call(args, 1);
}

PyDoc_STRVAR(owe_doc,
"owe(outlets, owed) -> list[int]\n\n"
"Make each ready outlet of outlets (fd not -1, nothing owed) owe owed: it is\n"
"no longer ready, and whoever writes to its connection first writes owed's\n"
"frames (see ws4py.asyncio.writing.WriteSide), until send_owed() sends\n"
"them. Return the indexes of the outlets that were not ready, in order.");

static PyObject *
owe(PyObject *self, PyObject *args)
{
    PyObject *outlets_obj, *owed, *seq, *result;
    Py_ssize_t n, i;
    if (!PyArg_ParseTuple(args, "OO:owe", &outlets_obj, &owed)) {
        return NULL;
    }
    if (owed == Py_None) {
        PyErr_SetString(PyExc_ValueError, "an outlet cannot owe None");
        return NULL;
    }
    seq = PySequence_Fast(outlets_obj, "outlets must be a list or tuple");
    if (seq == NULL) {
        return NULL;
    }
    result = PyList_New(0);
    n = PySequence_Fast_GET_SIZE(seq);
    for (i = 0; result != NULL && i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *current = outlet_owed(item);
        int fd;
        if (current == ERROR_OWED || (fd = outlet_fd(item)) == -2) {
            Py_CLEAR(result);
            break;
        }
        if (fd >= 0 && current == NULL) {
            if (outlet_set_owed(item, owed) < 0) {
                Py_CLEAR(result);
            }
            continue;
        }
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(result, index) < 0) {
            Py_CLEAR(result);
        }
        Py_XDECREF(index);
    }
    Py_DECREF(seq);
    return result;
}

static PyMethodDef fanout_methods[] = {
    {"send_ready", send_ready, METH_VARARGS, send_ready_doc},
    {"owe", owe, METH_VARARGS, owe_doc},
    {"send_owed", send_owed, METH_VARARGS, send_owed_doc},
    {NULL, NULL, 0, NULL},
};
#else
static PyMethodDef fanout_methods[] = {
    {NULL, NULL, 0, NULL},
};
#endif

static struct PyModuleDef fanout_module = {
    PyModuleDef_HEAD_INIT, "ws4py._fanout",
    "One frame to many sockets in one call (twin of ws4py.fanout's pure-Python Outlet and send_ready).",
    -1, fanout_methods,
};

PyMODINIT_FUNC
PyInit__fanout(void)
{
    PyObject *module = PyModule_Create(&fanout_module);
#if defined(__unix__) || defined(__APPLE__)
    if (module == NULL) {
        return NULL;
    }
    if (PyType_Ready(&OutletType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&OutletType);
    if (PyModule_AddObject(module, "Outlet", (PyObject *)&OutletType) < 0) {
        Py_DECREF(&OutletType);
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
