#include "greet.h"
const char *greet(void) { return "libgreet 1.0"; }
