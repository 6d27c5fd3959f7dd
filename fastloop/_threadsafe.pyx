# cython: freethreading_compatible = False
"""The stdlib's ``_ThreadSafeHandle`` (3.14+), made and run without its Python frames.

On 3.14+ ``call_soon_threadsafe`` returns ``events._ThreadSafeHandle``: a
Python ``Handle`` subclass whose ``cancel()``/``cancelled()`` and ``_run()``
hold the handle's ``RLock``, so a ``cancel()`` from another thread waits for
a running callback. Programs and tests check ``isinstance`` against it, so
fastloop returns the stdlib's class, not its own ``Handle``. Built by its
``__init__`` chain and run by its ``_run`` (``with self._lock:`` then
``super()._run()``, then ``Handle._run``'s ``Context.run``), every post cost
three Python frames, a ``super()`` lookup and eight ``setattr`` calls:
three quarters of the loop's instructions per post (callgrind, 3.15).

Here the same object is made and run from C, by the slot offsets of the
class's member descriptors (``_slots.h``):

* ``new_threadsafe_handle`` fills exactly the slots ``Handle.__init__`` and
  ``_ThreadSafeHandle.__init__`` fill outside debug mode, with the lock
  ``threading.RLock()`` returns;
* ``run_threadsafe`` does what ``_ThreadSafeHandle._run`` does: take the
  lock, look at ``_cancelled`` again under it, enter the context, call the
  callback, report its exception as ``Handle._run`` does, release the lock.

Both only where the class is the one this code mirrors: ``NATIVE`` (the
slots are plain object slots, checked at import; ``_compat`` checks their
names), and, per run, the class unchanged since its ``_run`` methods were
last seen to be the stdlib's (the type's version tag). A patched ``_run``,
a lock that is not the C ``RLock``, an odd context or args fall back to the
handle's own ``_run()``.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

from fastloop._handles cimport (
    PyContext_CopyCurrent,
    call_in_context,
    report_callback_error,
)

import contextvars
import threading
from asyncio import events

from fastloop import _compat

cdef extern from "_slots.h":
    Py_ssize_t fl_slot_offset(object descr)
    PyObject* fl_slot_get(object o, Py_ssize_t offset)
    void fl_slot_init(object o, Py_ssize_t offset, object v)
    object fl_alloc_instance(object type)
    unsigned int fl_type_version(object type)

cdef object _Handle = events.Handle
cdef object _ThreadSafeHandle = _compat.ThreadSafeHandle
cdef object _C_RLOCK = _compat.C_RLOCK
cdef object _RLOCK_FACTORY = _compat.RLOCK_FACTORY
cdef object _Context = contextvars.Context
# threading.RLock is looked up per post, as the stdlib's __init__ does (a
# patched one is honoured), straight from the module's dict.
cdef dict _threading_dict = threading.__dict__

# Slot offsets in a _ThreadSafeHandle instance (Handle's slots, then _lock).
cdef Py_ssize_t OFF_CONTEXT = -1, OFF_LOOP = -1, OFF_CALLBACK = -1, OFF_ARGS = -1
cdef Py_ssize_t OFF_CANCELLED = -1, OFF_REPR = -1, OFF_SOURCE_TB = -1, OFF_LOCK = -1


cdef Py_ssize_t _offset(cls, name):
    descr = cls.__dict__.get(name)
    return fl_slot_offset(descr) if descr is not None else -1


cdef bint _find_slots():
    global OFF_CONTEXT, OFF_LOOP, OFF_CALLBACK, OFF_ARGS
    global OFF_CANCELLED, OFF_REPR, OFF_SOURCE_TB, OFF_LOCK
    if not _compat.THREADSAFE_HANDLE_BY_SLOTS or _C_RLOCK is None:
        return False
    # object.__new__ is what makes an instance (fl_alloc_instance is its body).
    if '__new__' in _ThreadSafeHandle.__dict__ or '__new__' in _Handle.__dict__:
        return False
    OFF_CONTEXT = _offset(_Handle, '_context')
    OFF_LOOP = _offset(_Handle, '_loop')
    OFF_CALLBACK = _offset(_Handle, '_callback')
    OFF_ARGS = _offset(_Handle, '_args')
    OFF_CANCELLED = _offset(_Handle, '_cancelled')
    OFF_REPR = _offset(_Handle, '_repr')
    OFF_SOURCE_TB = _offset(_Handle, '_source_traceback')
    OFF_LOCK = _offset(_ThreadSafeHandle, '_lock')
    return min(OFF_CONTEXT, OFF_LOOP, OFF_CALLBACK, OFF_ARGS, OFF_CANCELLED,
               OFF_REPR, OFF_SOURCE_TB, OFF_LOCK) > 0


#: The stdlib's _ThreadSafeHandle is made and run natively (3.14 and 3.15).
NATIVE = _find_slots()

cdef bint _native = NATIVE
cdef object _rlock_acquire = _C_RLOCK.acquire if _native else None
cdef object _rlock_release = _C_RLOCK.release if _native else None
cdef object _RUN_SAFE = _ThreadSafeHandle.__dict__['_run'] if _native else None
cdef object _RUN_BASE = _Handle.__dict__['_run'] if _native else None
# The version tag of _ThreadSafeHandle when its _run and Handle._run were last
# seen to be the stdlib's own (0: not yet, or the class has no tag).
cdef unsigned int _checked_version = 0


cdef object new_threadsafe_handle(object callback, tuple args, object loop, object context):
    """``_ThreadSafeHandle(callback, args, loop, context)`` outside debug mode
    (the caller makes sure of both: ``NATIVE`` and not debug)."""
    cdef object h = fl_alloc_instance(_ThreadSafeHandle)
    cdef PyObject* factory
    # The slots in __init__'s order; fl_alloc_instance left them all empty.
    fl_slot_init(h, OFF_CONTEXT, PyContext_CopyCurrent() if context is None else context)
    fl_slot_init(h, OFF_LOOP, loop)
    fl_slot_init(h, OFF_CALLBACK, callback)
    fl_slot_init(h, OFF_ARGS, args)
    fl_slot_init(h, OFF_CANCELLED, False)
    fl_slot_init(h, OFF_REPR, None)
    fl_slot_init(h, OFF_SOURCE_TB, None)
    factory = PyDict_GetItem(_threading_dict, 'RLock')
    if factory != NULL and <object>factory is _RLOCK_FACTORY:
        # What threading.RLock() returns, without its Python frame.
        lock = _C_RLOCK()
    else:
        lock = threading.RLock()
    fl_slot_init(h, OFF_LOCK, lock)
    return h


cdef inline object _slot(object h, Py_ssize_t offset, str name):
    # The slot's value; an empty one raises what reading the attribute does.
    cdef PyObject* v = fl_slot_get(h, offset)
    return <object>v if v != NULL else getattr(h, name)


cdef bint _runs_as_stdlib(object cls):
    # Is _ThreadSafeHandle's _run (and Handle's, which it calls) still the
    # stdlib's? Looked at again only when the class's version tag moves.
    global _checked_version
    cdef unsigned int version = fl_type_version(cls)
    if version != 0 and version == _checked_version:
        return True
    if (cls.__dict__.get('_run') is not _RUN_SAFE
            or _Handle.__dict__.get('_run') is not _RUN_BASE):
        return False
    _checked_version = version
    return True


cdef int run_threadsafe(object handle) except -1:
    """``handle._run()`` for a ``_ThreadSafeHandle`` (the caller checks the
    exact type); 0 if it found the handle cancelled, else 1."""
    cdef PyObject* lock_slot
    if not _native or not _runs_as_stdlib(_ThreadSafeHandle):
        return _run_python(handle)
    lock_slot = fl_slot_get(handle, OFF_LOCK)
    if lock_slot == NULL or type(<object>lock_slot) is not _C_RLOCK:
        return _run_python(handle)
    # Our own reference: the callback may replace the slot.
    lock = <object>lock_slot
    # ``with self._lock:``: a cancel() from another thread waits for the
    # callback (acquire() releases the GIL while it waits for such a cancel).
    _rlock_acquire(lock)
    try:
        if _slot(handle, OFF_CANCELLED, '_cancelled'):
            return 0
        _run_body(handle)
    finally:
        _rlock_release(lock)
    return 1


cdef int _run_python(object handle) except -1:
    # As the stdlib's _run_once does: skip a cancelled handle, else _run().
    if handle._cancelled:
        return 0
    handle._run()
    return 1


cdef int _run_body(object handle) except -1:
    # Handle._run: ``self._context.run(self._callback, *self._args)``, an
    # exception other than SystemExit/KeyboardInterrupt reported to the loop.
    context = _slot(handle, OFF_CONTEXT, '_context')
    callback = _slot(handle, OFF_CALLBACK, '_callback')
    args = _slot(handle, OFF_ARGS, '_args')
    if type(context) is not _Context or type(args) is not tuple:
        # Whatever Context.run or the unpacking does with these, exactly.
        _RUN_BASE(handle)
        return 0
    try:
        call_in_context(context, callback, args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        # Read again, as Handle._run does: the callback may have cancelled
        # its own handle (which drops them).
        report_callback_error(handle, handle._callback, handle._args, handle._loop,
                              handle._source_traceback, exc)
    return 0
