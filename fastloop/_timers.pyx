# cython: binding=False
# (Plain method descriptors: docs/design.md, "Handles and timers".)
"""Where timers are ordered: TimerHandle and the loop's binary heap.

The heap is a C array of (deadline, handle) entries, so sifting compares
doubles in contiguous memory and never touches a Python object; it runs
heapq's algorithm with the stdlib's comparison, so timers come out in exactly
the stdlib's order (ties and NaN deadlines included). Cancelling is O(1): the
handle is flagged and counted, and stays in the heap until it reaches the top
or until cancelled entries dominate, when the loop compacts the heap (the same
rule as the stdlib's ``_run_once``, so memory stays bounded however many
timers are scheduled and cancelled).
"""

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject

from fastloop._handles cimport Handle, PyContext_CopyCurrent

cdef extern from "_sys.h":
    void fl_prefetch(const void* p) noexcept nogil
    void fl_prefetch_gc(const void* p) noexcept nogil

import sys

from fastloop import _compat

cdef object _getframe = sys._getframe
cdef object _extract_stack = _compat.extract_stack


@cython.auto_pickle(False)
cdef class TimerHandle(Handle):
    """Object returned by timed callback registration methods."""

    def __init__(self, when, callback, args, loop, context=None):
        if when is None:
            raise TypeError('when cannot be None')
        Handle.__init__(self, callback, args, loop, context)
        self.deadline = when
        if type(when) is not float:
            self.when_given = when
        self._scheduled = False

    @property
    def _when(self):
        return self.when()

    @cython.always_allow_keywords(False)
    def when(self):
        """Return a scheduled callback time (same clock as loop.time())."""
        # As given: the stdlib keeps call_at(5)'s int, and its repr says when=5.
        if self.when_given is not None:
            return self.when_given
        return self.deadline

    def _repr_info(self):
        info = Handle._repr_info(self)
        info.insert(2 if self._cancelled else 1, f'when={self.when()}')
        return info

    def __hash__(self):
        return hash(self.deadline)

    def __lt__(self, other):
        if isinstance(other, TimerHandle):
            return self.deadline < (<TimerHandle>other).deadline
        return NotImplemented

    def __le__(self, other):
        if isinstance(other, TimerHandle):
            return self.deadline < (<TimerHandle>other).deadline or self.__eq__(other)
        return NotImplemented

    def __gt__(self, other):
        if isinstance(other, TimerHandle):
            return self.deadline > (<TimerHandle>other).deadline
        return NotImplemented

    def __ge__(self, other):
        if isinstance(other, TimerHandle):
            return self.deadline > (<TimerHandle>other).deadline or self.__eq__(other)
        return NotImplemented

    def __eq__(self, other):
        if isinstance(other, TimerHandle):
            o = <TimerHandle>other
            return (self.deadline == o.deadline and self._callback == o._callback
                    and self._args == o._args and self._cancelled == o._cancelled)
        return NotImplemented

    @cython.always_allow_keywords(False)
    def cancel(self):
        cdef TimerHeap heap = self.heap
        if self._cancelled:
            return
        if heap is not None:
            heap.cancelled += 1
            self._cancel_native(heap.debug)
        else:
            self._loop._timer_handle_cancelled(self)
            self._cancel_native(self._loop.get_debug())


cdef TimerHandle new_timer(double when, object callback, object args, object loop,
                           object context, bint debug):
    cdef TimerHandle h = TimerHandle.__new__(TimerHandle)
    h._callback = callback
    h._args = args
    h._loop = loop
    h.ctx = PyContext_CopyCurrent() if context is None else context
    h.deadline = when
    if debug:
        h._source_traceback = _extract_stack(_getframe(0))
    return h


# The sifts are heapq's own algorithm (push: sift toward the root; pop: walk
# the smaller child up to a leaf, then sift the moved item back up), with the
# same comparison as asyncio.TimerHandle.__lt__ (deadline only). Fed the same
# operations, the heap therefore keeps exactly the stdlib's order, including
# for equal deadlines and NaN, whose order the stdlib's heap alone decides.

cdef inline bint _before(TimerEntry* a, TimerEntry* b) noexcept nogil:
    return a.when < b.when


cdef void _sift_to_root(TimerEntry* heap, Py_ssize_t start, Py_ssize_t pos) noexcept nogil:
    cdef TimerEntry item = heap[pos]
    cdef Py_ssize_t parent
    while pos > start:
        parent = (pos - 1) >> 1
        if not _before(&item, &heap[parent]):
            break
        heap[pos] = heap[parent]
        pos = parent
    heap[pos] = item


cdef void _sift_to_leaf(TimerEntry* heap, Py_ssize_t size, Py_ssize_t pos) noexcept nogil:
    cdef Py_ssize_t start = pos
    cdef TimerEntry item = heap[pos]
    cdef Py_ssize_t child = 2 * pos + 1
    while child + 1 < size:
        # Which child is smaller is a coin toss for random deadlines: an
        # index computed without a branch (setcc) instead of a branch the
        # CPU mispredicts half the time, level after level of every pop.
        child += not _before(&heap[child], &heap[child + 1])
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    if child < size:
        # A left child without a right one: the last node.
        heap[pos] = heap[child]
        pos = child
    heap[pos] = item
    _sift_to_root(heap, start, pos)


@cython.auto_pickle(False)
cdef class TimerHeap:

    def __cinit__(self):
        self.entries = NULL
        self.size = 0
        self.capacity = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.size):
            Py_DECREF(<object>self.entries[i].handle)
        PyMem_Free(self.entries)
        self.entries = NULL
        self.size = 0

    def __len__(self):
        return self.size

    cdef int push(self, TimerHandle h) except -1:
        cdef TimerEntry* grown
        cdef Py_ssize_t cap
        if self.size == self.capacity and cancelled_dominate(self):
            # Mostly cancelled timers: reclaim their slots instead of growing,
            # so a callback that schedules and cancels millions of timers
            # without yielding to the loop still runs in bounded memory.
            # Only cancelled entries go. (The stdlib would keep growing here;
            # this is the one case where the heap's shape, and so the order of
            # timers with equal deadlines, can differ from the stdlib's.)
            self.compact()
        if self.size == self.capacity:
            cap = self.capacity * 2 if self.capacity else 64
            grown = <TimerEntry*>PyMem_Realloc(self.entries, cap * sizeof(TimerEntry))
            if grown == NULL:
                raise MemoryError()
            self.entries = grown
            self.capacity = cap
        Py_INCREF(h)
        self.entries[self.size].when = h.deadline
        self.entries[self.size].handle = <PyObject*>h
        self.size += 1
        _sift_to_root(self.entries, 0, self.size - 1)
        h._scheduled = True
        h.heap = self
        return 0

    cdef TimerHandle pop(self):
        """Remove and return the earliest timer (caller checks size > 0)."""
        cdef TimerHandle h = <TimerHandle>self.entries[0].handle
        Py_DECREF(h)      # the heap's reference moves to ``h``
        self.size -= 1
        if self.size:
            self.entries[0] = self.entries[self.size]
            _sift_to_leaf(self.entries, self.size, 0)
            # Due timers are popped in a row: start loading the next one.
            fl_prefetch(self.entries[0].handle)
        h._scheduled = False
        h.heap = None
        return h

    cdef int drop_cancelled_head(self) except -1:
        """Pop cancelled timers off the top, as the stdlib does every iteration."""
        while self.size and (<TimerHandle>self.entries[0].handle)._cancelled:
            self.cancelled -= 1
            self.pop()
        return 0

    cdef int compact(self) except -1:
        """Drop every cancelled timer and re-heapify: O(n), run when they dominate."""
        cdef Py_ssize_t i, kept = 0
        cdef TimerHandle h
        for i in range(self.size):
            h = <TimerHandle>self.entries[i].handle
            if h._cancelled:
                h._scheduled = False
                h.heap = None
                Py_DECREF(h)
            else:
                self.entries[kept] = self.entries[i]
                kept += 1
        self.size = kept
        self.cancelled = 0
        i = kept // 2
        while i > 0:
            i -= 1
            _sift_to_leaf(self.entries, kept, i)
        return 0

    cdef int clear(self) except -1:
        cdef Py_ssize_t i, n = self.size
        cdef TimerHandle h
        self.size = 0
        self.cancelled = 0
        for i in range(n):
            h = <TimerHandle>self.entries[i].handle
            h._scheduled = False
            h.heap = None
            Py_DECREF(h)
        return 0

    cdef list handles(self):
        cdef Py_ssize_t i
        return [<object>self.entries[i].handle for i in range(self.size)]


# The heap's entries hold references in a C array that Cython's generated GC
# support cannot see. Extend the type's traverse/clear so a cycle running
# through a pending timer (timer -> callback -> loop -> heap -> timer) in a loop
# that was dropped without close() can still be collected.

cdef extern from "Python.h":
    ctypedef int (*fl_visitproc "visitproc")(PyObject*, void*)
    ctypedef int (*fl_traverseproc "traverseproc")(PyObject*, fl_visitproc, void*)
    ctypedef int (*fl_inquiry "inquiry")(PyObject*)
    ctypedef struct fl_type "PyTypeObject":
        fl_traverseproc tp_traverse
        fl_inquiry tp_clear

cdef fl_traverseproc _generated_traverse = (<fl_type*>TimerHeap).tp_traverse
cdef fl_inquiry _generated_clear = (<fl_type*>TimerHeap).tp_clear


cdef int _heap_traverse(PyObject* o, fl_visitproc visit, void* arg) noexcept:
    cdef TimerEntry* entries = (<TimerHeap>o).entries
    cdef Py_ssize_t i, n = (<TimerHeap>o).size
    cdef int r
    for i in range(n):
        # Heap order is unrelated to where the handles are in memory, so each
        # visit waited on a cache miss in turn; asked for well ahead, many
        # are on their way at once (measured: docs/design.md, "Handles and
        # timers").
        if i + 16 < n:
            fl_prefetch_gc(entries[i + 16].handle)
        r = visit(entries[i].handle, arg)
        if r:
            return r
    return _generated_traverse(o, visit, arg)


cdef int _heap_clear(PyObject* o) noexcept:
    try:
        (<TimerHeap>o).clear()
    except BaseException:
        pass
    return _generated_clear(o)


(<fl_type*>TimerHeap).tp_traverse = _heap_traverse
(<fl_type*>TimerHeap).tp_clear = _heap_clear
