# The C socket-address types and their conversion to what Python's socket
# module returns (shared by the accept loop and the datagram transport).

cdef extern from "_sys.h" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
        char sa_data[14]
    struct sockaddr_storage:
        sa_family_t ss_family
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        unsigned short sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        in6_addr sin6_addr
        unsigned int sin6_scope_id
    struct sockaddr_un:
        char sun_path[108]
    int AF_INET, AF_INET6, AF_UNIX
    size_t FL_SUN_PATH_OFFSET


cdef object sockaddr_to_python(sockaddr_storage* addr, socklen_t size)
