/* libgreet: the dependency of app-misc/hello. */
const char *greet(void);
