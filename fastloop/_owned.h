/* Handles the loop alone owns are invisible to the cyclic GC.
 *
 * A handle from call_soon()/call_later() usually lives only in the loop's
 * ready queue or timer heap until it runs. Tracked, every such handle counts
 * toward the GC's young generation and is traversed (and promoted, and
 * traversed again) by each collection while it waits: with 10,000 queued
 * callbacks that was a quarter of the loop's instructions. So the loop untracks
 * the handles it creates (fl_own), and the container holding one reports the
 * handle's references as its own (fl_visit_owned): while the container holds
 * the only reference, the handle is part of it, and a cycle through the
 * handle (obj -> handle -> obj.method) is collected exactly as if the handle
 * were tracked.
 *
 * A handle someone else also references (the caller kept what call_soon
 * returned) is neither visited through the container nor tracked while it is
 * still queued: the GC then sees its callback as referenced from outside and
 * keeps it, which is what the stdlib's reachable loop does anyway; before any
 * collection, verify_owned() (_handles.pyx) tracks such handles again. When
 * the loop lets go of a handle (it ran, a cancelled timer left the heap, the
 * loop was closed or collected), release_handle() tracks it again if it
 * outlives that, so from then on it is an ordinary GC object.
 */
#ifndef FASTLOOP_OWNED_H
#define FASTLOOP_OWNED_H

#include <Python.h>

static inline void fl_own(PyObject *o) {
    if (PyObject_IS_GC(o) && PyObject_GC_IsTracked(o))
        PyObject_GC_UnTrack(o);
}

/* The container's tp_traverse, for each object it holds. */
static inline int fl_visit_owned(PyObject *o, visitproc visit, void *arg) {
    if (!PyObject_IS_GC(o) || PyObject_GC_IsTracked(o))
        return visit(o, arg);
    if (Py_REFCNT(o) == 1 && Py_TYPE(o)->tp_traverse != NULL)
        return Py_TYPE(o)->tp_traverse(o, visit, arg);
    return 0;
}

/* Track o again if anything but its `owners` known holders references it. */
static inline void fl_track_if_shared(PyObject *o, Py_ssize_t owners) {
    if (Py_REFCNT(o) > owners && PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o))
        PyObject_GC_Track(o);
}

#endif
