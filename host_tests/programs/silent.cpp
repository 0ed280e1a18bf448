// Never prints and never ends.
#include "platform.hpp"
extern "C" int app_main() { for (;;) { __asm__ volatile("" ::: "memory"); } }
