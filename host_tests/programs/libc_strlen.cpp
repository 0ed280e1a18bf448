// Needs the C library's strlen: declared here, defined nowhere in the platform.
#include "platform.hpp"
extern "C" size_t strlen(const char* s);
const char* volatile g_text = "hello";
extern "C" int app_main() {
    qmcu::platform::console_write(g_text, strlen(g_text));
    return 0;
}
