/* A Python class's __slots__, read and written by offset.
 *
 * A slot of a class defined in Python is a member descriptor (T_OBJECT_EX)
 * that stores one object pointer at a fixed offset in the instance. Setting
 * one through setattr() costs an MRO lookup and a descriptor call; storing it
 * at its offset is what that descriptor's __set__ (PyMember_SetOne) ends up
 * doing. _threadsafe.pyx uses this to build and run the stdlib's
 * _ThreadSafeHandle without its Python frames (see there for the checks that
 * the class still has the slots it expects).
 */
#ifndef FASTLOOP_SLOTS_H
#define FASTLOOP_SLOTS_H

#include <Python.h>
#include <structmember.h>

#ifndef Py_T_OBJECT_EX
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif

/* The instance offset behind a class's slot descriptor, or -1 when descr is
 * not a plain writable object slot (then the caller keeps to setattr). */
static inline Py_ssize_t fl_slot_offset(PyObject *descr) {
    PyMemberDef *m;
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type))
        return -1;
    m = ((PyMemberDescrObject *)descr)->d_member;
    if (m->type != Py_T_OBJECT_EX || m->flags != 0 || m->offset <= 0)
        return -1;
    return m->offset;
}

/* The slot's object, borrowed; NULL if it was never set or was deleted. */
static inline PyObject *fl_slot_get(PyObject *o, Py_ssize_t offset) {
    return *(PyObject **)((char *)o + offset);
}

/* Fill an empty slot of a fresh instance (takes a new reference to v). */
static inline void fl_slot_init(PyObject *o, Py_ssize_t offset, PyObject *v) {
    Py_INCREF(v);
    *(PyObject **)((char *)o + offset) = v;
}

/* A new, empty instance of a heap type, as object.__new__(type) makes it:
 * type->tp_alloc zero-fills it (every slot NULL) and GC-tracks it. */
static inline PyObject *fl_alloc_instance(PyObject *type) {
    PyTypeObject *t = (PyTypeObject *)type;
    return t->tp_alloc(t, 0);
}

/* The type's version tag: CPython gives a type a new one whenever the type
 * or one of its bases is modified (a method patched, an attribute set), so an
 * unchanged tag means an unchanged class. 0 when there is none. */
static inline unsigned int fl_type_version(PyObject *type) {
#if PY_VERSION_HEX >= 0x030C0000
    PyTypeObject *t = (PyTypeObject *)type;
    if (t->tp_version_tag == 0)
        (void)PyUnstable_Type_AssignVersionTag(t);
    return t->tp_version_tag;
#else
    /* Before 3.12 a tag is valid only with Py_TPFLAGS_VALID_VERSION_TAG:
     * report none, so the caller checks the class itself every time. */
    (void)type;
    return 0;
#endif
}

#endif
