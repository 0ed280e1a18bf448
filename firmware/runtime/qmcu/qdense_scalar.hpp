// The scalar variant of QDenseFast (Cortex-M0/M3, the host): int32 multiply-accumulate over the kernel
// layout of qdense_fast.hpp, in the same order as the DSP variant. Include qdense_fast.hpp, not this file.
// forwardExact is the path of both variants for the shifts RightShiftRequant does not cover: one compact
// function for every layer shape (run-time sizes, Requantizer::apply), since such shifts are rare.
//
// The order (per row: folded bias, then for each chunk the products of in[4c], in[4c+2], in[4c+1], in[4c+3],
// then the tail) is the one tools/qmcu/codegen/kernel_layout.py bounds: no partial sum can leave int32.
#pragma once

#include "config.hpp"
#include "qaffine.hpp"

namespace qmcu {
namespace dense_kernel {
namespace scalar {

// Multiply-accumulate one group of R rows; returns the weight pointer advanced past the group.
// (Plain loops with unroll pragmas: they compile much faster than Unrolled, which the host tests notice.)
template <size_t NIn, size_t R>
QMCU_DENSE_INLINE const int16_t* macGroup(const int8_t* in, const int16_t* w, int32_t* acc) {
    for (size_t c = 0; c < dense_layout::fullChunks(NIn); ++c) {
        const int32_t x0 = in[0];
        const int32_t x1 = in[1];
        const int32_t x2 = in[2];
        const int32_t x3 = in[3];
#pragma GCC unroll 4
        for (size_t r = 0; r < R; ++r) {
            int32_t a = acc[r];  // one product at a time: a chain of MLAs
            a += x0 * w[0];
            a += x2 * w[1];
            a += x1 * w[2];
            a += x3 * w[3];
            acc[r] = a;
            w += 4;
        }
        in += 4;
    }
    constexpr size_t kTail = dense_layout::tailInputs(NIn);
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r) {
        if constexpr (kTail == 1) {
            acc[r] += in[0] * w[0];
            w += 2;
        } else if constexpr (kTail == 2) {
            acc[r] += in[0] * w[0];
            acc[r] += in[1] * w[1];
            w += 2;
        } else if constexpr (kTail == 3) {
            acc[r] += in[0] * w[0];
            acc[r] += in[1] * w[1];
            acc[r] += in[2] * w[2];
            w += 4;
        }
    }
    return w;
}

template <size_t NIn, size_t R>
QMCU_DENSE_INLINE const int16_t* group(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                       const RightShiftRequant& fast) {
    int32_t acc[R];
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r) {
        acc[r] = bias[r];
    }
    w = macGroup<NIn, R>(in, w, acc);
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r) {
        out[r] = static_cast<int8_t>(fast.apply(acc[r]));
    }
    return w;
}

// Any layer, any shift: run-time sizes, the same layout and order, Requantizer::apply.
inline __attribute__((noinline)) void forwardExact(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                                   const Requantizer& rq, size_t n_in, size_t n_out) {
    const size_t tail = dense_layout::tailInputs(n_in);
    for (size_t o0 = 0; o0 < n_out; o0 += dense_layout::kGroupRows) {
        const size_t rows = n_out - o0 < dense_layout::kGroupRows ? n_out - o0 : dense_layout::kGroupRows;
        int32_t acc[dense_layout::kGroupRows];
        for (size_t r = 0; r < rows; ++r) {
            acc[r] = bias[o0 + r];
        }
        const int8_t* x = in;
        for (size_t c = 0; c < dense_layout::fullChunks(n_in); ++c, x += 4) {
            for (size_t r = 0; r < rows; ++r, w += 4) {
                acc[r] += x[0] * w[0];
                acc[r] += x[2] * w[1];
                acc[r] += x[1] * w[2];
                acc[r] += x[3] * w[3];
            }
        }
        for (size_t r = 0; r < rows; ++r, w += dense_layout::tailHalves(n_in)) {
            for (size_t k = 0; k < tail; ++k) {
                acc[r] += x[k] * w[k];
            }
        }
        for (size_t r = 0; r < rows; ++r) {
            out[o0 + r] = static_cast<int8_t>(rq.apply(acc[r]));
        }
    }
}

template <size_t NIn, size_t NOut>
QMCU_DENSE_INLINE void forward(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                               const Requantizer& rq) {
    if (!RightShiftRequant::covers(rq)) {
        forwardExact(in, out, w, bias, rq, NIn, NOut);
        return;
    }
    constexpr size_t kRows = dense_layout::kGroupRows;
    const RightShiftRequant fast = RightShiftRequant::from(rq);
    for (size_t g = 0; g < NOut / kRows; ++g) {
        w = group<NIn, kRows>(in, out, w, bias, fast);
        bias += kRows;
        out += kRows;
    }
    constexpr size_t kLast = NOut % kRows;
    if constexpr (kLast != 0) {
        group<NIn, kLast>(in, out, w, bias, fast);
    }
}

// --- per-channel weights (QDenseFastPC): one Requantizer per output row, the same layout and order ---

// Requantizer::apply(acc) for one row: RightShiftRequant when it covers the row's shift, apply itself otherwise.
QMCU_DENSE_INLINE int32_t requantRow(int32_t acc, const Requantizer& rq) {
    return RightShiftRequant::covers(rq) ? RightShiftRequant::from(rq).apply(acc) : rq.apply(acc);
}

template <size_t NIn, size_t R>
QMCU_DENSE_INLINE const int16_t* groupPerChannel(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                                 const Requantizer* rq) {
    int32_t acc[R];
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r) {
        acc[r] = bias[r];
    }
    w = macGroup<NIn, R>(in, w, acc);
#pragma GCC unroll 4
    for (size_t r = 0; r < R; ++r) {
        out[r] = static_cast<int8_t>(requantRow(acc[r], rq[r]));
    }
    return w;
}

}  // namespace scalar
}  // namespace dense_kernel
}  // namespace qmcu
