"""The ready queue: a FIFO of handles, run in the order they were added."""

cimport cython


@cython.auto_pickle(False)
cdef class ReadyQueue:

    def __cinit__(self):
        self.slots = [None] * 64
        self.mask = 63
        self.head = 0
        self.count = 0

    def __len__(self):
        return self.count

    cdef int _grow(self) except -1:
        cdef list bigger = self.snapshot()
        cdef Py_ssize_t capacity = (self.mask + 1) * 2
        bigger.extend([None] * (capacity - self.count))
        self.slots = bigger
        self.head = 0
        self.mask = capacity - 1
        return 0

    cdef list snapshot(self):
        """The queued items, oldest first (a copy)."""
        cdef Py_ssize_t i
        return [self.slots[(self.head + i) & self.mask] for i in range(self.count)]

    cdef int clear(self) except -1:
        cdef Py_ssize_t i
        for i in range(self.mask + 1):
            self.slots[i] = None
        self.head = 0
        self.count = 0
        return 0
