/* -DBIG_SIZE=<bytes>: a bare ELF (no platform, no board script) whose flash image is that large. */
__attribute__((used)) const unsigned char kBig[BIG_SIZE] = {1, 2, 3};
void _start(void) { for (;;) { } }
