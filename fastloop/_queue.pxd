from cpython.list cimport PyList_GET_ITEM, PyList_SET_ITEM
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject


cdef class ReadyQueue:
    # A ring over a Python list: slots hold handles or None. The list (not a C
    # array) is what the cyclic GC traverses, so a handle cycle through an
    # unclosed loop can still be collected.
    cdef list slots
    cdef Py_ssize_t head
    cdef readonly Py_ssize_t count
    cdef Py_ssize_t mask          # capacity - 1; capacity is a power of two

    cdef int _grow(self) except -1
    cdef list snapshot(self)
    cdef int clear(self) except -1

    cdef inline int push(self, object item) except -1:
        cdef Py_ssize_t i
        cdef PyObject* old
        if self.count > self.mask:
            self._grow()
        i = (self.head + self.count) & self.mask
        old = PyList_GET_ITEM(self.slots, i)
        Py_INCREF(item)
        PyList_SET_ITEM(self.slots, i, item)
        Py_DECREF(<object>old)
        self.count += 1
        return 0

    cdef inline object pop(self):
        # Caller checks count > 0. The slot's reference moves to the caller.
        cdef Py_ssize_t i = self.head
        cdef object item = <object>PyList_GET_ITEM(self.slots, i)
        Py_DECREF(item)
        Py_INCREF(None)
        PyList_SET_ITEM(self.slots, i, None)
        self.head = (i + 1) & self.mask
        self.count -= 1
        return item
