// A protocol record stream (BEGIN, RECORDS results, SUM, END) on the console, for comparing consoles.
// -DRECORDS=<n> -DAPP_STATUS=<n>.
#include "platform.hpp"
#include "records.hpp"
namespace {
struct ConsoleSink {
    static void write(const char* p, size_t n) { qmcu::platform::console_write(p, n); }
};
}  // namespace
extern "C" int app_main() {
    qmcu::records::RecordWriter<ConsoleSink> w;
    w.text("uart test app");
    w.begin("BEGIN");
    w.field("proto", 1); w.field("model", "uarttest"); w.field("mode", "xor"); w.field("count", static_cast<int32_t>(RECORDS));
    w.field("outputs", 1); w.field("unit", "none");
    w.end();
    for (int32_t i = 0; i < RECORDS; ++i) {
        const int8_t in[2] = {static_cast<int8_t>(i - 100), static_cast<int8_t>(100 - i)};
        const int8_t out[1] = {static_cast<int8_t>((i * 37) % 256 - 128)};
        w.begin("R"); w.field("i", i); w.field_list("in", in, 2); w.field_list("out", out, 1); w.field("n", i * 3);
        w.end();
    }
    w.begin("SUM"); w.field("correct", 3); w.field("total", 4); w.end();
    w.begin("END"); w.field("status", static_cast<int32_t>(APP_STATUS)); w.field("records", static_cast<int32_t>(RECORDS));
    w.field("stack", static_cast<int32_t>(qmcu::platform::stack_used())); w.end();
    return APP_STATUS;
}
