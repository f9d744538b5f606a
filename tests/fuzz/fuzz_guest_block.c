/* Fuzz harness: a guest file the VE's root wrote as it liked (/etc/hosts,
 * /etc/resolv.conf, /etc/network/interfaces), with the host's marked block put
 * in it (ve_guest_edit_block(), what every start and every set does).
 *
 * An input is the guest's text; its first byte picks the tag, whether the block
 * goes first, and whether it is set or removed, or (bit 6) that the text is
 * /etc/shadow, where root's password is set (ve_guest_edit_shadow()). For a
 * block, on every input:
 * - a block that is set is in the result whole: its begin line, its lines, its
 *   end line, one after the other;
 * - a removed block is gone, with every copy of it: the result has no begin
 *   line of the tag; a set one is there once;
 * - the guest's text before our block is kept as it was;
 * - editing again changes nothing once the block is in place: the second and
 *   the third result are equal, so a start does not rewrite a file for nothing
 *   and an edit never grows a file.
 * For /etc/shadow: root's first line is the one changed, to "root:HASH:DAY:"
 * and its old fields from the fourth on; every other byte is kept; a text
 * without root is refused (ENOENT); setting the same again changes nothing.
 *
 * A broken rule aborts. Built with libFuzzer (-DVED_FUZZ=ON, clang) it fuzzes;
 * otherwise tests/fuzz/driver.c replays tests/fuzz/corpus/fuzz_guest_block. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "ve/guest.h"

static const char *const tags[] = { "hostname", "dns", "network", "ssh" };
static const char *const contents[] = {
        "127.0.1.1\tweb1.example.com web1\n",
        "nameserver 10.0.0.1\nnameserver 2001:db8::1\nsearch example.com\n",
        "auto eth0\niface eth0 inet manual",
        "",
};

/* The first line of text equal to line (with its '\n'), or NULL; and how many. */
static const char *first_line(const char *text, const char *line, unsigned *count)
{
        size_t len = strlen(line);
        const char *first = NULL;

        *count = 0;
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, len) == 0) {
                        first = first ? first : p;
                        (*count)++;
                }
        return first;
}

#define HASH "$y$j9T$salt$hashhashhash"
#define DAY  20000L

static void check_shadow(const char *text)
{
        const char *line = NULL, *eol;
        size_t before, after;
        char *once, *twice, head[64];

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, "root:", 5) == 0) {
                        line = p;
                        break;
                }
        errno = 0;
        once = ve_guest_edit_shadow(text, "root", HASH, DAY);
        if (line == NULL) {
                require(once == NULL && errno == ENOENT, "a shadow without root was edited");
                return;
        }
        require(once != NULL, "root's line was not edited: %s", strerror(errno));
        eol = line + strcspn(line, "\n");
        before = (size_t)(line - text);
        after = strlen(eol);
        snprintf(head, sizeof(head), "root:%s:%ld:", HASH, DAY);
        require(strlen(once) >= before + strlen(head) + after, "the edit lost bytes");
        require(strncmp(once, text, before) == 0, "lines before root's changed");
        require(strncmp(once + before, head, strlen(head)) == 0, "root's line does not start %s",
                head);
        require(strcmp(once + strlen(once) - after, eol) == 0, "lines after root's changed");
        require(memchr(once + before, '\n', strlen(once) - before - after) == NULL,
                "root's line became more than one");
        twice = ve_guest_edit_shadow(once, "root", HASH, DAY);
        require(twice != NULL && strcmp(once, twice) == 0, "setting the same again changed it");
        free(once);
        free(twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char begin[64], end[64], *text, *once, *twice, *thrice, *whole;
        const char *tag, *content, *b, *ours;
        bool prepend, remove;
        unsigned before, after;

        if (size == 0)
                return 0;
        tag = tags[data[0] & 3];
        content = contents[(data[0] >> 2) & 3];
        prepend = data[0] & 16;
        remove = data[0] & 32;
        if (remove)
                content = NULL;
        /* The guest's file as ved reads it: a C string. */
        text = strndup((const char *)data + 1, size - 1);
        require(text != NULL, "out of memory");
        if (data[0] & 64) {
                check_shadow(text);
                free(text);
                return 0;
        }
        snprintf(begin, sizeof(begin), "# BEGIN ved %s\n", tag);
        snprintf(end, sizeof(end), "# END ved %s\n", tag);
        b = first_line(text, begin, &before);

        once = ve_guest_edit_block(text, tag, content, prepend);
        require(once != NULL, "out of memory");
        if (content != NULL && *content) {
                size_t n = strlen(content);
                bool nl = content[n - 1] != '\n';

                require(asprintf(&whole, "%s%s%s%s", begin, content, nl ? "\n" : "", end) > 0,
                        "out of memory");
                /* At the start of a line (the guest may have the same text
                 * inside one of its own lines). */
                ours = strstr(once, whole);
                while (ours != NULL && ours != once && ours[-1] != '\n')
                        ours = strstr(ours + 1, whole);
                require(ours != NULL, "the block is not whole in the result");
                free(whole);
        } else {
                first_line(once, begin, &after);
                require(after == 0, "%u begin lines before the removal, %u after", before, after);
        }
        /* What came before our block (or all of it, when appended) is kept. */
        if (!prepend || b != NULL) {
                size_t keep = b ? (size_t)(b - text) : strlen(text);

                require(strncmp(once, text, keep) == 0,
                        "the guest's text before the block changed");
        }

        twice = ve_guest_edit_block(once, tag, content, prepend);
        thrice = twice ? ve_guest_edit_block(twice, tag, content, prepend) : NULL;
        require(twice != NULL && thrice != NULL, "out of memory");
        require(strcmp(twice, thrice) == 0, "editing again still changes the file");
        /* Once: a guest's last line "# BEGIN ved TAG" without its newline is
         * made whole by an append, and goes at the next edit. */
        first_line(twice, begin, &after);
        require(after == (content != NULL && *content ? 1u : 0u), "%u begin lines of %s", after,
                tag);
        free(text);
        free(once);
        free(twice);
        free(thrice);
        return 0;
}
