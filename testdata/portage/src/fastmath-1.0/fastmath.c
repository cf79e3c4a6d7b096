/* Built for a newer CPU than x86-64 v1 on purpose: an AVX2 instruction
 * (VEX-encoded vpaddd on ymm registers) that the generic-CPU check must
 * find. Inline assembly, so no compiler flag can leave it out. */
#include <stdio.h>
int main(void) {
	__asm__ volatile("vpaddd %%ymm0, %%ymm1, %%ymm2" ::: "xmm0", "xmm1", "xmm2");
	puts("fastmath 1.0");
	return 0;
}
