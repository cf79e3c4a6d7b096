/* hello prints its version, the libgreet it was linked with and the
 * EPREFIX it was built for: the test reads the last to see that the build
 * ran at the published path. */
#include <stdio.h>
#include <string.h>
#include "greet.h"
#ifndef EPREFIX
#error EPREFIX must be defined
#endif
int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("hello 1.0 (%s)\n", greet());
		return 0;
	}
	printf("prefix %s\n", EPREFIX);
	return 0;
}
