#pragma once
#include <qmcu/qdense_fast.hpp>
// RightShiftRequant::apply == Requantizer::apply for every shift it covers ([-23, -1]), multipliers at the edges,
// powers of two (exact ties) and random, accumulators at the edges, near powers of two and random.
namespace {
uint32_t g_state = 0x12345678u;
uint32_t next() { g_state = g_state * 1664525u + 1013904223u; return g_state ^ (g_state >> 15); }
}  // namespace
// returns the number of mismatches; *checked counts the comparisons
__attribute__((noinline)) uint32_t checkRequant(uint32_t random_accs, uint32_t* checked) {
    int32_t mults[40 + 16];
    int nm = 0;
    const int32_t fixed[] = {0, 1, 2, 3, 0x40000000, 0x40000001, 0x7FFFFFFF, 0x7FFFFFFE, 0x60000000, 0x55555555};
    for (int32_t m : fixed) { mults[nm++] = m; }
    for (int k = 0; k < 31; k += 2) { mults[nm++] = static_cast<int32_t>(1u << k); }
    while (nm < static_cast<int>(sizeof mults / sizeof mults[0])) { mults[nm++] = static_cast<int32_t>(next() >> 1); }
    int32_t edges[8 + 31 * 6];
    int ne = 0;
    const int32_t fixed_accs[] = {qmcu::kInt32Min, qmcu::kInt32Min + 1, -1, 0, 1, qmcu::kInt32Max, qmcu::kInt32Max - 1, -2};
    for (int32_t a : fixed_accs) { edges[ne++] = a; }
    for (int k = 0; k < 31; ++k) {
        const int32_t p = static_cast<int32_t>(1u << k);
        edges[ne++] = p; edges[ne++] = p - 1; edges[ne++] = p + 1;
        edges[ne++] = -p; edges[ne++] = -p - 1; edges[ne++] = 1 - p;
    }
    uint32_t bad = 0;
    uint32_t n = 0;
    // covers() is exactly [-23, -1]
    for (int32_t shift = -31; shift <= 30; ++shift) {
        const qmcu::Requantizer rq{1 << 30, shift, 0, -128, 127};
        bad += qmcu::RightShiftRequant::covers(rq) != (shift >= -23 && shift <= -1) ? 1u : 0u;
    }
    for (int32_t shift = qmcu::RightShiftRequant::kMinShift; shift <= -1; ++shift) {
        for (int mi = 0; mi < nm; ++mi) {
            const qmcu::Requantizer rq{mults[mi], shift, static_cast<int32_t>(next() % 256u) - 128, -128, 127};
            const qmcu::RightShiftRequant fast = qmcu::RightShiftRequant::from(rq);
            const qmcu::Requantizer wide{rq.multiplier, rq.shift, 0, qmcu::kInt32Min, qmcu::kInt32Max};
            const qmcu::RightShiftRequant fast_wide = qmcu::RightShiftRequant::from(wide);
            for (uint32_t j = 0; j < static_cast<uint32_t>(ne) + random_accs; ++j) {
                int32_t acc;
                if (j < static_cast<uint32_t>(ne)) {
                    acc = edges[j];
                } else if (j % 2 == 0) {
                    acc = static_cast<int32_t>(next());
                } else {
                    acc = static_cast<int32_t>(next()) >> (next() % 31u);  // small magnitudes: many ties
                }
                bad += fast.apply(acc) != rq.apply(acc) ? 1u : 0u;
                bad += fast_wide.scale(acc) != wide.apply(acc) ? 1u : 0u;  // the unclamped scaled value
                n += 2;
            }
        }
    }
    *checked = n;
    return bad;
}
