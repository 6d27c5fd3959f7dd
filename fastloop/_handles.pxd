from cpython.ref cimport PyObject


cdef extern from "Python.h":
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1
    object PyContext_CopyCurrent()


cdef class Handle:
    cdef readonly object _callback
    cdef readonly object _args
    # The context the callback runs in (``_context``/``get_context()``).
    # owns_context: the loop made it (copy_context()) for this handle alone,
    # so while the handle is loop-owned it is untracked too (_owned.h).
    cdef object ctx
    cdef bint owns_context
    # Untracked while the loop alone references it (own_handle / release_handle).
    cdef bint owned
    cdef readonly object _loop
    cdef public object _source_traceback
    cdef public object _repr
    cdef readonly bint _cancelled
    cdef object __weakref__

    cdef int _run_native(self) except -1
    cdef int _cancel_native(self, bint debug) except -1
    cdef _report(self, exc)


# context.run(callback, *args) for an exact contextvars.Context (any handle type).
cdef int call_in_context(object context, object callback, object args) except -1
# The stdlib's Handle._run reporting a callback's exception (any handle type).
cdef report_callback_error(object handle, object callback, object args, object loop,
                           object source_traceback, object exc)

cdef Handle new_handle(object callback, object args, object loop, object context, bint debug)

# The loop's handles that only it references are kept out of the cyclic GC
# (_owned.h); own_handle() untracks one, verify_owned() re-tracks those that
# were kept by their caller after all.
cdef int own_handle(Handle h) except -1
# The same for the stdlib's _ThreadSafeHandle (3.14+): the handle only.
cdef int own_stdlib_handle(object h) except -1
cdef void verify_owned() noexcept
# The loop lets go of ``o`` (any queued object; the caller holds one reference).
cdef void release_handle(PyObject* o) noexcept
