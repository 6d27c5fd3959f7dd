from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject


cdef extern from "_sys.h":
    void fl_prefetch(const void* p) noexcept nogil


cdef class ReadyQueue:
    # A ring of owned references in a C array; its GC traverse/clear are
    # extended by hand (_queue.pyx), visiting untracked loop-owned handles
    # through fl_visit_owned, so a cycle through a queued handle in a loop
    # that was dropped unclosed can still be collected.
    cdef PyObject** slots
    cdef Py_ssize_t head
    cdef readonly Py_ssize_t count
    cdef Py_ssize_t mask          # capacity - 1; capacity is a power of two
    cdef object owner             # unused; an object field makes the type GC-aware

    cdef int _grow(self) except -1
    cdef list snapshot(self)
    cdef int clear(self) except -1

    cdef inline int push(self, object item) except -1:
        if self.count > self.mask:
            self._grow()
        Py_INCREF(item)
        self.slots[(self.head + self.count) & self.mask] = <PyObject*>item
        self.count += 1
        return 0

    cdef inline object pop(self):
        # Caller checks count > 0. The slot's reference moves to the caller.
        cdef object item = <object>self.slots[self.head]
        Py_DECREF(item)
        self.head = (self.head + 1) & self.mask
        self.count -= 1
        if self.count:
            fl_prefetch(self.slots[self.head])
        return item
