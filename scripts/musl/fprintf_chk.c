/*
 * Debian's libunwind.a (package libunwind-22-dev, the unwinder the static
 * musl build links, see scripts/build-musl.sh) was compiled against glibc
 * with _FORTIFY_SOURCE, so its error path calls __fprintf_chk, which glibc
 * has and musl does not. This forwards it to vfprintf: the flag only asks
 * glibc to check %n in writable formats, and libunwind's formats are literals.
 */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
	va_list args;
	int written;

	(void)flag;
	va_start(args, format);
	written = vfprintf(stream, format, args);
	va_end(args);
	return written;
}
