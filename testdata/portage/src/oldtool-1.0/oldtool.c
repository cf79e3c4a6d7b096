#include <stdio.h>
int main(void) { puts("oldtool 1.0"); return 0; }
