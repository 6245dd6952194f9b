/* tests/lib/pin.c — see pin.h. Apart from cunit_main.c, so that the end-to-end programs,
 * which have their own main(), can link it from libtestlib.a. */
#include "tests/lib/pin.h"

#include <stdio.h>

int
test_read_pin(const char *path, char *pin, size_t pinsz)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		return -1;
	}
	n = fread(pin, 1, pinsz - 1, f);
	fclose(f);
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r')) {
		n--;
	}
	pin[n] = '\0';
	return 0;
}
