# The stdlib's _ThreadSafeHandle (3.14+) made and run from C (_threadsafe.pyx).

# _ThreadSafeHandle(callback, args, loop, context) outside debug mode; only
# where _threadsafe.NATIVE is true.
cdef object new_threadsafe_handle(object callback, tuple args, object loop, object context)
# handle._run() for an object whose type is exactly _ThreadSafeHandle, with
# the stdlib's _run_once check of _cancelled first: 0 if it was cancelled.
cdef int run_threadsafe(object handle) except -1
