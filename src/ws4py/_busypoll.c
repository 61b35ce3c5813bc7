/*
 * ws4py._busypoll: wait for an epoll set to become ready without sleeping, GIL released.
 *
 * Used by ws4py.pollers.EPollPoller.poll_busily (see ws4py.loop.EventLoop.busy_poll).
 * Polling from Python would take the GIL back after each epoll_wait(0): the other
 * threads of the process (a web server's workers) would wait for it while the loop
 * spins. Here the loop spins in C with the GIL released. Linux only (epoll).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__linux__)
#include <errno.h>
#include <sys/epoll.h>
#include <time.h>

PyDoc_STRVAR(spin_doc,
"spin(epoll_fd, seconds) -> bool\n\n"
"Poll the epoll set epoll_fd with no timeout, over and over, for up to seconds,\n"
"without holding the GIL; whether something became ready. The events are left\n"
"for the next poll (level-triggered registrations report them again).");

static PyObject *
spin(PyObject *self, PyObject *args)
{
    int epfd;
    double seconds;
    if (!PyArg_ParseTuple(args, "id:spin", &epfd, &seconds)) {
        return NULL;
    }
    struct epoll_event event;
    struct timespec start, now;
    int n = 0, err = 0;
    Py_BEGIN_ALLOW_THREADS
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        n = epoll_wait(epfd, &event, 1, 0);
        if (n != 0) {
            err = n < 0 ? errno : 0;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) * 1e-9 >= seconds) {
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (n < 0) {
        if (err == EINTR) {
            Py_RETURN_FALSE; /* a signal: the caller polls again, its handler runs */
        }
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBool_FromLong(n > 0);
}

static PyMethodDef busypoll_methods[] = {
    {"spin", spin, METH_VARARGS, spin_doc},
    {NULL, NULL, 0, NULL},
};
#else
static PyMethodDef busypoll_methods[] = {
    {NULL, NULL, 0, NULL},
};
#endif

static struct PyModuleDef busypoll_module = {
    PyModuleDef_HEAD_INIT, "ws4py._busypoll",
    "Busy polling of an epoll set with the GIL released (ws4py.pollers.EPollPoller).",
    -1, busypoll_methods,
};

PyMODINIT_FUNC
PyInit__busypoll(void)
{
    return PyModule_Create(&busypoll_module);
}
