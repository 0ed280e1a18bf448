// Prints one line, then never ends: the runner's timeout must stop it.
#include "console_text.hpp"
extern "C" int app_main() {
    put("hanging\n");
    for (;;) {
        __asm__ volatile("" ::: "memory");
    }
}
