#include "core/utf8.h"

size_t utf8_char(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t len;
	unsigned c, min;

	if (s[0] < 0x80) {
		c = s[0];
		len = 1;
		goto done;
	}
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, c = s[0] & 0x1f, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, c = s[0] & 0x0f, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, c = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and code points past U+10FFFF */
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
done:
	if (cp)
		*cp = c;
	return len;
}

size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t l = utf8_char(s + i, len - i, NULL);
		if (!l)
			return i;
		i += l;
	}
	return len;
}
