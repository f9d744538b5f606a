/* A minimal intrusive doubly linked list (the kernel's list_head shape). */
#ifndef VED_LIST_H
#define VED_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_head {
        struct list_head *next, *prev;
};

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

static inline void list_init(struct list_head *h)
{
        h->next = h->prev = h;
}

static inline bool list_empty(const struct list_head *h)
{
        return h->next == h;
}

static inline void list_add_tail(struct list_head *h, struct list_head *n)
{
        n->prev = h->prev;
        n->next = h;
        h->prev->next = n;
        h->prev = n;
}

static inline void list_del(struct list_head *n)
{
        n->prev->next = n->next;
        n->next->prev = n->prev;
        n->next = n->prev = n;
}

/* Safe against removal of the current entry. */
#define list_for_each_safe(pos, tmp, head)                                                         \
        for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
