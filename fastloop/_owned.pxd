# The GC protocol for handles only the loop owns (see _owned.h), and the type
# slots a container with a C array of references extends so the GC sees them.
from cpython.ref cimport PyObject


cdef extern from "_owned.h":
    ctypedef int (*visitproc)(PyObject*, void*)
    ctypedef int (*traverseproc)(PyObject*, visitproc, void*)
    ctypedef int (*inquiry)(PyObject*)
    ctypedef struct PyTypeObject:
        traverseproc tp_traverse
        inquiry tp_clear

    # Untrack a handle the loop just created and alone references.
    void fl_own(PyObject* o)
    # A container's tp_traverse calls this for each handle it holds.
    int fl_visit_owned(PyObject* o, visitproc visit, void* arg) noexcept
    # Tracks o again if it has more than ``owners`` references.
    void fl_track_if_shared(PyObject* o, Py_ssize_t owners)
