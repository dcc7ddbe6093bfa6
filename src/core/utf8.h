/*
 * utf8: the one UTF-8 decoder the project uses (Unicode table 3-7: no
 * overlong forms, no surrogates, nothing past U+10FFFF).
 */
#ifndef RB_CORE_UTF8_H
#define RB_CORE_UTF8_H

#include <stddef.h>

/* Length of the well-formed character at s (n > 0 bytes available), with
 * its code point in *cp (may be NULL); 0 when the bytes are not one. */
size_t utf8_char(const unsigned char *s, size_t n, unsigned *cp);

/* Offset of the first byte that does not start a well-formed character,
 * or len when all of s is valid UTF-8. */
size_t utf8_invalid_at(const unsigned char *s, size_t len);

#endif
