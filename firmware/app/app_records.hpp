// The records every application prints (format: tools/qmcu/run/records.py), written in one place so the
// XOR app and the generic MLP app cannot drift apart.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "platform.hpp"
#include "records.hpp"

#define QMCU_STR2(x) #x
#define QMCU_STR(x) QMCU_STR2(x)
#ifndef QMCU_COUNTER_UNIT
#define QMCU_COUNTER_UNIT none
#endif

namespace qmcu {
namespace app {

struct ConsoleSink {
    static void write(const char* p, size_t n) { platform::console_write(p, n); }
};

template <typename Writer>
void writeBegin(Writer& w, const char* model, const char* mode, size_t count, size_t outputs) {
    w.begin("BEGIN");
    w.field("proto", records::kProtocolVersion);
    w.field("model", model);
    w.field("mode", mode);
    w.field("count", static_cast<int32_t>(count));
    w.field("outputs", static_cast<int32_t>(outputs));
    w.field("unit", QMCU_STR(QMCU_COUNTER_UNIT));
    w.end();
}

// Runs one inference between two counter reads and prints its record. The counter is made to run
// first, outside the timed window (a debugger that disconnected may have stopped it).
template <typename Writer, typename Infer>
void inferAndRecord(Writer& w, size_t i, const int8_t* in, size_t n_in, int8_t* out, size_t n_out, Infer infer) {
    platform::counter_resume();
    const uint32_t t0 = platform::counter_read();
    infer(in, out);
    const uint32_t t1 = platform::counter_read();
    w.begin("R");
    w.field("i", static_cast<int32_t>(i));
    w.field_list("in", in, n_in);
    w.field_list("out", out, n_out);
    w.field("n", static_cast<int32_t>(t1 - t0));
    w.end();
}

template <typename Writer>
void writeSummary(Writer& w, int32_t correct, size_t total) {
    w.begin("SUM");
    w.field("correct", correct);
    w.field("total", static_cast<int32_t>(total));
    w.end();
}

template <typename Writer>
void writeLayer(Writer& w, const char* name, uint32_t count) {
    w.begin("LAYER");
    w.field("name", name);
    w.field("n", static_cast<int32_t>(count));
    w.end();
}

// The application's own status when a graph model's activation arena was overrun: the guard bytes after
// it (model.hpp's arenaGuardIntact) changed during the run (tools/qmcu/run/records.py STATUS_ARENA_OVERRUN).
constexpr int32_t kStatusArenaOverrun = 2;

// The last record. Its status is the application's, or the stack-overflow status where the stack
// guard is damaged and no exit status reaches the host (a real board: platform::end_status).
template <typename Writer>
void writeEnd(Writer& w, int32_t status, size_t records) {
    w.begin("END");
    w.field("status", platform::end_status(status));
    w.field("records", static_cast<int32_t>(records));
    w.field("stack", static_cast<int32_t>(platform::stack_used()));
    w.end();
}

}  // namespace app
}  // namespace qmcu
