/* Does not compile, on purpose: the test of a failed src_compile. */
int main(void) { return this_is_not_declared; }
