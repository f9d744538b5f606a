/* Cleanup attributes for every resource type (LXC's define_cleanup_function,
 * crun's cleanup_free). Each cleanup accepts NULL and negative fds. */
#ifndef VE_CLEANUP_H
#define VE_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void cleanup_freep(void *p)
{
        free(*(void **)p);
}

static inline void cleanup_closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void cleanup_fclosep(FILE **f)
{
        if (*f != NULL)
                fclose(*f);
}

static inline void cleanup_closedirp(DIR **d)
{
        if (*d != NULL)
                closedir(*d);
}

#define _cleanup_free_     __attribute__((cleanup(cleanup_freep)))
#define _cleanup_close_    __attribute__((cleanup(cleanup_closep)))
#define _cleanup_fclose_   __attribute__((cleanup(cleanup_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(cleanup_closedirp)))

/* Take ownership out of a cleanup variable. */
static inline void *steal_ptr_impl(void **p)
{
        void *v = *p;
        *p = NULL;
        return v;
}
#define steal_ptr(pp) steal_ptr_impl((void **)(pp))

static inline int steal_fd(int *fd)
{
        int v = *fd;
        *fd = -EBADF;
        return v;
}

#endif
