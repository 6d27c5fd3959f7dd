# cython: binding=False
# (Plain method descriptors: docs/design.md, "Handles and timers".)
"""The ready queue: a FIFO of handles, run in the order they were added."""

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport Py_DECREF, PyObject

from fastloop._handles cimport release_handle
from fastloop._owned cimport PyTypeObject, fl_visit_owned, inquiry, traverseproc, visitproc


@cython.auto_pickle(False)
cdef class ReadyQueue:

    def __cinit__(self):
        self.slots = <PyObject**>PyMem_Malloc(64 * sizeof(PyObject*))
        if self.slots == NULL:
            raise MemoryError()
        self.mask = 63
        self.head = 0
        self.count = 0

    def __dealloc__(self):
        if self.slots != NULL:
            self.clear()
            PyMem_Free(self.slots)
            self.slots = NULL

    def __len__(self):
        return self.count

    cdef int _grow(self) except -1:
        cdef Py_ssize_t i, capacity = (self.mask + 1) * 2
        cdef PyObject** bigger = <PyObject**>PyMem_Malloc(capacity * sizeof(PyObject*))
        if bigger == NULL:
            raise MemoryError()
        for i in range(self.count):
            bigger[i] = self.slots[(self.head + i) & self.mask]
        PyMem_Free(self.slots)
        self.slots = bigger
        self.head = 0
        self.mask = capacity - 1
        return 0

    cdef list snapshot(self):
        """The queued items, oldest first (a copy)."""
        cdef Py_ssize_t i
        return [<object>self.slots[(self.head + i) & self.mask] for i in range(self.count)]

    cdef int clear(self) except -1:
        # Empty the ring before dropping anything: a handle's deallocation
        # can run code that looks at (or pushes to) the queue.
        cdef Py_ssize_t i, n = self.count, head = self.head, mask = self.mask
        cdef PyObject** items
        if n == 0:
            return 0
        items = <PyObject**>PyMem_Malloc(n * sizeof(PyObject*))
        if items == NULL:
            raise MemoryError()
        for i in range(n):
            items[i] = self.slots[(head + i) & mask]
        self.head = 0
        self.count = 0
        for i in range(n):
            release_handle(items[i])
            Py_DECREF(<object>items[i])
        PyMem_Free(items)
        return 0


# The ring's references sit in a C array that Cython's generated GC support
# cannot see: extend the type's traverse/clear (see _owned.h for why queued
# handles are visited through fl_visit_owned).

cdef traverseproc _generated_traverse = (<PyTypeObject*>ReadyQueue).tp_traverse
cdef inquiry _generated_clear = (<PyTypeObject*>ReadyQueue).tp_clear


cdef int _queue_traverse(PyObject* o, visitproc visit, void* arg) noexcept:
    cdef PyObject** slots = (<ReadyQueue>o).slots
    cdef Py_ssize_t i, head = (<ReadyQueue>o).head, mask = (<ReadyQueue>o).mask
    cdef int r
    for i in range((<ReadyQueue>o).count):
        r = fl_visit_owned(slots[(head + i) & mask], visit, arg)
        if r:
            return r
    return _generated_traverse(o, visit, arg)


cdef int _queue_clear(PyObject* o) noexcept:
    try:
        (<ReadyQueue>o).clear()
    except BaseException:
        pass
    return _generated_clear(o)


(<PyTypeObject*>ReadyQueue).tp_traverse = _queue_traverse
(<PyTypeObject*>ReadyQueue).tp_clear = _queue_clear
