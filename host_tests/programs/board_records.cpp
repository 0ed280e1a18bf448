// The application's record path (app_records.hpp) on three XOR inferences; -DOVERFLOW=1 also overwrites
// the stack guard first, so END carries the stack-overflow status.
#include "app_records.hpp"
#include "stack_dive.hpp"
namespace {
struct Sink { static void write(const char* p, size_t n) { qmcu::platform::console_write(p, n); } };
}  // namespace
extern "C" __attribute__((noinline)) void qmcu_infer(const int8_t* in, int8_t* out) {
    out[0] = static_cast<int8_t>(in[0] ^ in[1]);
}
extern "C" int app_main() {
    qmcu::records::RecordWriter<Sink> w;
    qmcu::app::writeBegin(w, "fw", "xor", 3, 1);
    for (size_t i = 0; i < 3; ++i) {
        const int8_t in[2] = {static_cast<int8_t>(i), 1};
        int8_t out[1];
        qmcu::app::inferAndRecord(w, i, in, 2, out, 1, qmcu_infer);
    }
#if OVERFLOW
    const int status = dive(0) == 0xFFFFFFFFu ? 1 : 0;
#else
    const int status = 0;
#endif
    qmcu::app::writeEnd(w, status, 3);
    return status;
}
