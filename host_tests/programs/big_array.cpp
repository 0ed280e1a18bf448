// -DBIG_SIZE=<bytes>: a constant array that large (bigger than the smallest board's flash).
#include "platform.hpp"
extern const uint8_t kBig[BIG_SIZE];
const uint8_t kBig[BIG_SIZE] = {1, 2, 3};
volatile uint32_t g_index = 1;
extern "C" int app_main() { return kBig[g_index] == 2 ? 0 : 1; }
