# cython: freethreading_compatible = False
# cython: binding=False
# (Plain method descriptors: docs/design.md, "Handles and timers".)
"""Callback handles: what ``call_soon`` returns and what the ready queue holds.

Same public surface as ``asyncio.Handle`` (``cancel``, ``cancelled``,
``get_context``, repr, the ``_callback``/``_args``/``_cancelled`` attributes
the stdlib's own code and tests read), but a C struct, so creating and running
one costs no Python-level ``__init__`` or ``Context.run`` method call.
"""

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_REFCNT, PyObject

from fastloop._owned cimport (
    PyTypeObject, fl_own, fl_track_if_shared, fl_visit_owned, inquiry, visitproc,
)

import contextvars
import gc
import sys

cdef extern from "Python.h":
    int PyObject_TypeCheck(PyObject* o, PyTypeObject* tp)
    ctypedef struct PyTupleObject:
        PyObject* ob_item[1]
    bint PyTuple_CheckExact(object o)
    Py_ssize_t PyTuple_GET_SIZE(object o)
    object PyObject_Vectorcall(object callable, PyObject** args, size_t nargsf,
                               PyObject* kwnames)
    void* PyVectorcall_Function(object callable)
    PyTypeObject* Py_TYPE(PyObject* o)
    bint PyObject_GC_IsTracked(object o)

from fastloop import _compat

cdef object _getframe = sys._getframe
cdef object _Context = contextvars.Context
cdef object _extract_stack = _compat.extract_stack
cdef object _format_callback_source = _compat.format_callback_source


@cython.freelist(256)
@cython.auto_pickle(False)
cdef class Handle:
    """Object returned by callback registration methods."""

    def __init__(self, callback, args, loop, context=None):
        if context is None:
            context = PyContext_CopyCurrent()
        if self.ctx is not None:
            fl_track_if_shared(<PyObject*>self.ctx, 0)    # see _disown
        self.ctx = context
        self.owns_context = False
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        if loop.get_debug():
            self._source_traceback = _extract_stack(_getframe(0))
        else:
            self._source_traceback = None

    def _repr_info(self):
        info = [type(self).__name__]
        if self._cancelled:
            info.append('cancelled')
        if self._callback is not None:
            info.append(_format_callback_source(self._callback, self._args,
                                                self._loop.get_debug()))
        if self._source_traceback:
            frame = self._source_traceback[len(self._source_traceback) - 1]
            info.append(f'created at {frame[0]}:{frame[1]}')
        return info

    def __repr__(self):
        if self._repr is not None:
            return self._repr
        return '<{}>'.format(' '.join(self._repr_info()))

    @cython.always_allow_keywords(False)
    def get_context(self):
        if self.owns_context:
            # Someone else holds it from now on: an ordinary GC object.
            fl_track_if_shared(<PyObject*>self.ctx, 0)
        return self.ctx

    @property
    def _context(self):
        return self.get_context()

    @cython.always_allow_keywords(False)
    def cancel(self):
        if not self._cancelled:
            self._cancel_native(self._loop.get_debug())

    @cython.always_allow_keywords(False)
    def cancelled(self):
        return self._cancelled

    def _run(self):
        self._run_native()

    cdef int _cancel_native(self, bint debug) except -1:
        self._cancelled = True
        if debug:
            # Keep the callback's description for "Executing <Handle ...> took"
            # warnings after the references are dropped below.
            self._repr = repr(self)
        # Drop the references now: a cancelled timer may sit in the heap for a
        # long time and must not keep its callback's objects alive.
        self._callback = None
        self._args = None
        return 0

    cdef int _run_native(self) except -1:
        cdef object context = self.ctx
        # Held here: the callback may cancel its own handle, which drops the
        # handle's references.
        cdef object callback = self._callback
        cdef object args = self._args
        try:
            if type(context) is not _Context:
                # The stdlib calls ``self._context.run(...)``: whatever an odd
                # context= object does with that (an AttributeError for most).
                context.run(callback, *args)
                return 0
            call_in_context(context, callback, args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report(exc)
        return 0

    cdef _report(self, exc):
        report_callback_error(self, self._callback, self._args, self._loop,
                              self._source_traceback, exc)


cdef int call_in_context(object context, object callback, object args) except -1:
    """``context.run(callback, *args)`` for a real Context, without the method
    call. The caller holds references to ``callback`` and ``args``."""
    PyContext_Enter(context)
    try:
        if PyTuple_CheckExact(args) and PyVectorcall_Function(callback) != NULL:
            # The arguments straight from the tuple (vectorcall) instead of
            # tp_call, which unpacks the tuple again. Callables without
            # vectorcall (a Task's step wrapper) take the tuple as it is.
            PyObject_Vectorcall(callback, (<PyTupleObject*>args).ob_item,
                                PyTuple_GET_SIZE(args), NULL)
        else:
            callback(*args)
    finally:
        PyContext_Exit(context)
    return 0


cdef report_callback_error(object handle, object callback, object args, object loop,
                           object source_traceback, object exc):
    """What the stdlib's Handle._run does with a callback's exception."""
    cb = _format_callback_source(callback, args, loop.get_debug())
    context = {
        'message': f'Exception in callback {cb}',
        'exception': exc,
        'handle': handle,
    }
    if source_traceback:
        context['source_traceback'] = source_traceback
    loop.call_exception_handler(context)


cdef Handle new_handle(object callback, object args, object loop, object context, bint debug):
    """The loop's constructor: skips ``__init__``'s argument parsing."""
    cdef Handle h = Handle.__new__(Handle)
    h._callback = callback
    h._args = args
    h._loop = loop
    if context is None:
        h.ctx = PyContext_CopyCurrent()
        h.owns_context = True
    else:
        h.ctx = context
    if debug:
        # The first Python frame above the (frameless) native call_soon is the
        # caller's, which is where the stdlib's trimmed traceback ends too.
        h._source_traceback = _extract_stack(_getframe(0))
    return h


# -- handles the loop alone owns (see _owned.h) ------------------------------
#
# The loop untracks each handle it creates for its queue or heap. Whoever
# called call_soon() may keep the handle (``obj.h = loop.call_soon(obj.cb)``);
# such a handle must be tracked again before the GC next looks, or a cycle
# through it and an unclosed loop could never be collected. So every handle
# owned since the last check sits in ``_unverified`` (one reference each), and
# verify_owned(), run at the start of every loop iteration and before every
# collection (gc.callbacks), tracks those referenced from anywhere but their
# container and this list. That is O(1) per handle, and when the GC runs each
# untracked handle in a container is referenced by that container alone.

cdef PyObject** _unverified = NULL
cdef Py_ssize_t _unverified_count = 0
cdef Py_ssize_t _unverified_capacity = 0


cdef int _remember(PyObject* h) except -1:
    # Into _unverified, with a reference of its own.
    global _unverified, _unverified_capacity, _unverified_count
    cdef PyObject** grown
    cdef Py_ssize_t cap
    if _unverified_count == _unverified_capacity:
        cap = _unverified_capacity * 2 if _unverified_capacity else 256
        grown = <PyObject**>PyMem_Realloc(_unverified, cap * sizeof(PyObject*))
        if grown == NULL:
            raise MemoryError()
        _unverified = grown
        _unverified_capacity = cap
    Py_INCREF(<object>h)
    _unverified[_unverified_count] = h
    _unverified_count += 1
    return 0


cdef int own_handle(Handle h) except -1:
    _remember(<PyObject*>h)
    h.owned = True
    fl_own(<PyObject*>h)
    if h.owns_context:
        # The handle alone references it; its traverse (below) visits it
        # through fl_visit_owned like a container visits the handle.
        fl_own(<PyObject*>h.ctx)
    return 0


# The stdlib's _ThreadSafeHandle (3.14+ call_soon_threadsafe) is owned the
# same way, with the GC's tracked bit as its ``owned`` flag (nothing else
# untracks one while it lives). Only the handle: its traverse is the stdlib's
# and visits its context plainly, so the context stays tracked (an untracked
# one would hide a cycle through its variables), and so does its lock.
cdef object _ThreadSafeHandle = _compat.ThreadSafeHandle


cdef inline bint _owned_stdlib(PyObject* o) noexcept:
    return <object>Py_TYPE(o) is _ThreadSafeHandle and not PyObject_GC_IsTracked(<object>o)


cdef int own_stdlib_handle(object h) except -1:
    _remember(<PyObject*>h)
    fl_own(<PyObject*>h)
    return 0


cdef inline void _disown(PyObject* h, Py_ssize_t holders) noexcept:
    # An ordinary GC object again if more than ``holders`` reference it. Its
    # context is tracked again in any case: CPython's context deallocator
    # unlinks the object from the GC's lists without checking that it is
    # tracked, so no context may go untracked once the loop lets go.
    (<Handle>h).owned = False
    if (<Handle>h).owns_context:
        fl_track_if_shared(<PyObject*>(<Handle>h).ctx, 0)
    fl_track_if_shared(h, holders)


cdef void release_handle(PyObject* o) noexcept:
    if PyObject_TypeCheck(o, <PyTypeObject*>Handle):
        if (<Handle>o).owned:
            _disown(o, 1)
    elif _owned_stdlib(o):
        fl_track_if_shared(o, 1)


cdef void verify_owned() noexcept:
    global _unverified, _unverified_capacity, _unverified_count
    cdef PyObject** items = _unverified
    cdef Py_ssize_t i, n = _unverified_count, cap = _unverified_capacity
    cdef PyObject* p
    if n == 0:
        return
    # Detach the array first: a decref below can free a handle whose
    # callback's finalizer schedules (and so owns) a new one.
    _unverified = NULL
    _unverified_count = _unverified_capacity = 0
    for i in range(n):
        p = items[i]
        # Still owned, it sits in its container: that and this list hold one
        # reference each; one more and the caller kept it.
        if not PyObject_TypeCheck(p, <PyTypeObject*>Handle):
            if _owned_stdlib(p):
                fl_track_if_shared(p, 2)
        elif (<Handle>p).owned and Py_REFCNT(<object>p) > 2:
            _disown(p, 0)
        Py_DECREF(<object>p)
    if _unverified == NULL:
        _unverified = items
        _unverified_capacity = cap
    else:
        PyMem_Free(items)


def _verify_before_collection(phase, info):
    if phase == 'start':
        verify_owned()


gc.callbacks.append(_verify_before_collection)


# Handle's GC slots, by hand: the traverse visits a context the handle owns
# through fl_visit_owned (untracked while the handle is loop-owned), and clear
# makes sure it is tracked before it may be freed (see _disown).

cdef inquiry _generated_clear = (<PyTypeObject*>Handle).tp_clear


cdef inline int _visit(PyObject* o, visitproc visit, void* arg) noexcept:
    return visit(o, arg) if o != NULL else 0


cdef int _handle_traverse(PyObject* o, visitproc visit, void* arg) noexcept:
    cdef int r
    cdef PyObject* ctx = <PyObject*>(<Handle>o).ctx
    r = _visit(<PyObject*>(<Handle>o)._callback, visit, arg)
    if r == 0:
        r = _visit(<PyObject*>(<Handle>o)._args, visit, arg)
    if r == 0 and ctx != NULL:
        r = fl_visit_owned(ctx, visit, arg)
    if r == 0:
        r = _visit(<PyObject*>(<Handle>o)._loop, visit, arg)
    if r == 0:
        r = _visit(<PyObject*>(<Handle>o)._source_traceback, visit, arg)
    if r == 0:
        r = _visit(<PyObject*>(<Handle>o)._repr, visit, arg)
    return r


cdef int _handle_clear(PyObject* o) noexcept:
    if <PyObject*>(<Handle>o).ctx != NULL:
        fl_track_if_shared(<PyObject*>(<Handle>o).ctx, 0)
    return _generated_clear(o)


(<PyTypeObject*>Handle).tp_traverse = _handle_traverse
(<PyTypeObject*>Handle).tp_clear = _handle_clear
