// Overwrites the stack guard and returns normally: the exit must report the overflow.
#include "console_text.hpp"
#include "stack_dive.hpp"
extern "C" int app_main() {
    put("diving\n");
    return dive(0) == 0xFFFFFFFFu ? 1 : 0;
}
