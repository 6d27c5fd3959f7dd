# cython: freethreading_compatible = False
"""Callback handles: what ``call_soon`` returns and what the ready queue holds.

Same public surface as ``asyncio.Handle`` (``cancel``, ``cancelled``,
``get_context``, repr, the ``_callback``/``_args``/``_cancelled`` attributes
the stdlib's own code and tests read), but a C struct, so creating and running
one costs no Python-level ``__init__`` or ``Context.run`` method call.
"""

cimport cython

import sys

from fastloop import _compat

cdef object _getframe = sys._getframe
cdef object _extract_stack = _compat.extract_stack
cdef object _format_callback_source = _compat.format_callback_source


@cython.freelist(256)
@cython.auto_pickle(False)
cdef class Handle:
    """Object returned by callback registration methods."""

    def __init__(self, callback, args, loop, context=None):
        if context is None:
            context = PyContext_CopyCurrent()
        self._context = context
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

    def get_context(self):
        return self._context

    def cancel(self):
        if not self._cancelled:
            self._cancel_native(self._loop.get_debug())

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
        cdef object context = self._context
        try:
            PyContext_Enter(context)
            try:
                self._callback(*self._args)
            finally:
                PyContext_Exit(context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report(exc)
        return 0

    cdef _report(self, exc):
        loop = self._loop
        cb = _format_callback_source(self._callback, self._args, loop.get_debug())
        context = {
            'message': f'Exception in callback {cb}',
            'exception': exc,
            'handle': self,
        }
        if self._source_traceback:
            context['source_traceback'] = self._source_traceback
        loop.call_exception_handler(context)


cdef Handle new_handle(object callback, object args, object loop, object context, bint debug):
    """The loop's constructor: skips ``__init__``'s argument parsing."""
    cdef Handle h = Handle.__new__(Handle)
    h._callback = callback
    h._args = args
    h._loop = loop
    h._context = PyContext_CopyCurrent() if context is None else context
    if debug:
        # The first Python frame above the (frameless) native call_soon is the
        # caller's, which is where the stdlib's trimmed traceback ends too.
        h._source_traceback = _extract_stack(_getframe(0))
    return h
