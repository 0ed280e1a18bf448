// Fast fully connected int8 layer for Cortex-M (spec: reference.dense in tools/qmcu/quant/reference.py).
//
//   qmcu::QDenseFast<NIn, NOut>{weights, folded_biases, requantizer}.forward(in, out)
//   out[o] = requantizer.apply(bias[o] + sum_i (in[i] - input_zero_point) * w[o][i])       (int8 in, int8 out)
//
// computed from data that tools/qmcu/codegen/kernel_layout.py (prepare_dense, render_prepared) prepares on the host:
//   folded_biases[o] = bias[o] - input_zero_point * sum_i w[o][i]   (int32, checked there), so the
//                      kernel multiplies the raw int8 inputs: acc[o] = folded_biases[o] + sum_i in[i] * w[o][i]
//                      (the same integer as the unfolded sum, hence the same bits after requantization;
//                      kernel_layout.py also proves that no partial sum of the order below leaves int32).
//   weights          = the int8 weights widened to int16 and reordered into the kernel layout below.
//   requantizer      = the layer's Requantizer, unchanged.
//
// Kernel layout (int16_t; the array must be 4-byte aligned: the DSP path reads it as 32-bit words).
// Outputs are processed in groups of kGroupRows = 4 consecutive rows, then one last group of
// NOut % 4 rows. With C = NIn / 4 full chunks of four inputs and T = NIn % 4 tail inputs, a group of
// R rows starting at row o0 holds, in this order:
//   for c in [0, C): for r in [0, R):  w[o0+r][4c], w[o0+r][4c+2], w[o0+r][4c+1], w[o0+r][4c+3]
//   tail, for r in [0, R):  T=1: w[o0+r][NIn-1], 0
//                           T=2: w[o0+r][NIn-2], w[o0+r][NIn-1]
//                           T=3: w[o0+r][NIn-3], w[o0+r][NIn-2], w[o0+r][NIn-1], 0
// i.e. each 32-bit word is an int16 pair that SMLAD multiplies with a pair of sign-extended inputs:
// SXTB16(x) = (in[4c], in[4c+2]) and SXTB16(x ROR 8) = (in[4c+1], in[4c+3]) for x = the word in[4c..4c+3].
// Every row uses dense_layout::rowHalves(NIn) int16 values; the array has NOut * rowHalves(NIn).
// Each row accumulates in that order: folded bias, per chunk in[4c], in[4c+2], in[4c+1], in[4c+3], then the tail.
//
// Two variants behind one signature, chosen at compile time, reading the same data, giving the same bits:
//   DSP    (__ARM_FEATURE_DSP: Cortex-M4/M7/M33, optimised builds; qdense_dsp.hpp): SXTB16 + SMLAD, two MACs
//          per instruction, the four rows of a group share each unpacked input word; requantization with
//          SMLAL + ASR, SSAT, BFI and one four-lane SSUB8/SEL clamp per group.
//   Both: in and out may be unaligned, and must not overlap.
//   scalar (Cortex-M0/M3, the host, any -O0 build; qdense_scalar.hpp): int32 multiply-accumulate, same order.
// QMCU_DENSE_FORCE_SCALAR=1 forces the scalar variant; QMCU_DENSE_EMULATE_DSP=1 compiles the DSP variant
// with portable stand-ins for the intrinsics on a core without them (host tests of the DSP code path).
// Layers with NIn * NOut <= 64 are expanded at the call site; larger ones are one out-of-line function.
//
// Requantization is Requantizer::apply bit for bit, for every int32 accumulator. For shift in [-23, -1] (the
// usual case: a real multiplier in [2^-24, 0.5)) both variants use the single-rounding identity proved in
// RightShiftRequant below; for other shifts both run one compact out-of-line kernel (scalar::forwardExact,
// run-time sizes) with Requantizer::apply itself.
#pragma once

#include "config.hpp"
#include "qaffine.hpp"

// QMCU_DENSE_FAST_DSP: the DSP variant is compiled; QMCU_DENSE_FAST_DSP_NATIVE: with the real instructions.
// An unoptimised build (-O0) takes the scalar variant: the DSP variant relies on the optimiser to keep its
// fully expanded code in registers, and without it needs kilobytes of stack per layer.
#if defined(QMCU_DENSE_FORCE_SCALAR) && QMCU_DENSE_FORCE_SCALAR
#define QMCU_DENSE_FAST_DSP 0
#define QMCU_DENSE_FAST_DSP_NATIVE 0
#elif defined(__ARM_FEATURE_DSP) && defined(__OPTIMIZE__)
#define QMCU_DENSE_FAST_DSP 1
#define QMCU_DENSE_FAST_DSP_NATIVE 1
#elif defined(QMCU_DENSE_EMULATE_DSP) && QMCU_DENSE_EMULATE_DSP
#define QMCU_DENSE_FAST_DSP 1
#define QMCU_DENSE_FAST_DSP_NATIVE 0
#else
#define QMCU_DENSE_FAST_DSP 0
#define QMCU_DENSE_FAST_DSP_NATIVE 0
#endif

// Always inlined (also at -Os, where GCC would otherwise keep small helpers out of line and pass structs
// through memory).
#if defined(__GNUC__)
#define QMCU_DENSE_INLINE inline __attribute__((always_inline))
#define QMCU_DENSE_LAMBDA_INLINE __attribute__((always_inline))
#else
#define QMCU_DENSE_INLINE inline
#define QMCU_DENSE_LAMBDA_INLINE
#endif

namespace qmcu {

namespace dense_kernel {

// A compile-time index: Unrolled<N>::run(f) calls f(Index<0>{}), ..., f(Index<N - 1>{}), so the body can
// use decltype(i)::value as a constant (array indices that stay in registers, instruction immediates).
template <size_t I>
struct Index {
    static constexpr size_t value = I;
};

template <size_t N>
struct Unrolled {
    template <typename F>
    static QMCU_DENSE_INLINE void run(F&& f) {
        Unrolled<N - 1>::run(f);
        f(Index<N - 1>{});
    }
};
template <>
struct Unrolled<0> {
    template <typename F>
    static QMCU_DENSE_INLINE void run(F&&) {}
};

}  // namespace dense_kernel

namespace dense_layout {

constexpr size_t kGroupRows = 4;

constexpr size_t fullChunks(size_t n_in) { return n_in / 4; }
constexpr size_t tailInputs(size_t n_in) { return n_in % 4; }
// int16 values per row for the tail: T=1,2 -> one word, T=3 -> two words.
constexpr size_t tailHalves(size_t n_in) { return tailInputs(n_in) == 0 ? 0 : (tailInputs(n_in) == 3 ? 4 : 2); }
constexpr size_t rowHalves(size_t n_in) { return 4 * fullChunks(n_in) + tailHalves(n_in); }
constexpr size_t weightCount(size_t n_in, size_t n_out) { return n_out * rowHalves(n_in); }

}  // namespace dense_layout

// Requantizer::apply for shift in [-23, -1] in one rounding step. With P = acc * m, r = -shift:
//   SRDHM:  y = floor((P + 2^30) / 2^31)                                   (ties toward +infinity)
//   RDBPOT: z = floor((y + 2^(r-1)) / 2^r)       if y >= 0                  (ties away from zero)
//           z = floor((y + 2^(r-1) - 1) / 2^r)   if y < 0
// and floor(floor(a / 2^31) / 2^r) = floor(a / 2^(31+r)) for integer a, so
//   z = floor((P + 2^30 + 2^(30+r) - [y < 0] * 2^31) / 2^(31+r)).
// y < 0 happens only for acc < 0 (m >= 0); for acc < 0 with y = 0 (P in [-2^30, 0]) the corrected sum stays
// in [0, 2^(31+r)), so z = 0 either way: the correction may use the sign of acc instead of that of y.
// Adding zero_point * 2^(31+r) to the sum adds zero_point to z exactly, so
//   z + zero_point = (X >> 32) >> (r - 1),  X = P + R - [acc < 0] * 2^31,  R = 2^30 + 2^(30+r) + zero_point * 2^(31+r).
// |P| < 2^62 keeps X in int64, and X >> 32 lies within +-(2^30 + 2^29 + 1) for r <= 23
// (|zero_point| * 2^(r-1) <= 2^29), so the high word is exact in int32: one ADDS/ADC of the sign term onto R,
// one SMLAL, one ASR. host_tests/test_fast_kernels.py checks it against Requantizer::apply on edges, ties and
// random values for every shift, on the host and on the Cortex-M cores. Other shifts use Requantizer::apply.
struct RightShiftRequant {
    static constexpr int32_t kMinShift = -23;

    int32_t multiplier;
    int32_t post_shift;  // r - 1, in [0, 22]
    int32_t round_hi;    // R = round_hi * 2^32 + round_lo
    uint32_t round_lo;
    int32_t qmin;
    int32_t qmax;

    // shift in [-23, -1], i.e. post = ~shift = -shift - 1 in [0, 22] (one MVN, shared with from(), and one compare).
    QMCU_DENSE_INLINE static constexpr bool covers(const Requantizer& rq) {
        return ~static_cast<uint32_t>(rq.shift) <= 22u;
    }

    // The constants for rq; meaningful when covers(rq) (and multiplier in [0, 2^31), Requantizer's contract).
    // For other shifts the result is defined but unused, so callers may compute it before checking covers().
    QMCU_DENSE_INLINE static constexpr RightShiftRequant from(const Requantizer& rq) {
        const uint32_t post = ~static_cast<uint32_t>(rq.shift) & 31u;  // -shift - 1 when covered
        // v = (2 * zero_point + 1) * 2^(r-1): R = 2^30 + v * 2^31, i.e. high word v >> 1, low word
        // 2^30 + (v odd) * 2^31 (v is odd only for r = 1).
        const uint32_t v = ((static_cast<uint32_t>(rq.zero_point) << 1) | 1u) << post;
        const int32_t hi = static_cast<int32_t>(v) >> 1;
        return RightShiftRequant{rq.multiplier, static_cast<int32_t>(post), hi, 0x40000000u | (v << 31), rq.qmin,
                                 rq.qmax};
    }

    // multiplyByQuantizedMultiplier(acc, multiplier, shift) + zero_point, for every int32 acc.
    QMCU_DENSE_INLINE constexpr int32_t scale(int32_t acc) const {
        // R - [acc < 0] * 2^31 first (ADDS/ADC onto the constant), then the product (one SMLAL).
        const int64_t round = int64_t{round_hi} * (int64_t{1} << 32) + int64_t{round_lo};
        const int64_t base = round + static_cast<int32_t>(acc & kInt32Min);
        const int64_t sum = base + static_cast<int64_t>(acc) * multiplier;
        return static_cast<int32_t>(sum >> 32) >> post_shift;
    }

    // Requantizer::apply(acc).
    QMCU_DENSE_INLINE constexpr int32_t apply(int32_t acc) const {
        int32_t v = scale(acc);
        v = v < qmin ? qmin : v;  // two selects: GCC makes them two IT-predicated moves, no branch
        v = v > qmax ? qmax : v;
        return v;
    }
};

}  // namespace qmcu

#include "qdense_scalar.hpp"
#if QMCU_DENSE_FAST_DSP
#include "qdense_dsp.hpp"
#endif

namespace qmcu {

namespace dense_kernel {
#if QMCU_DENSE_FAST_DSP
namespace variant = dsp_kernel;
#else
namespace variant = scalar;
#endif

// Per-channel rows, one group of kGroupRows at a time (the variant computes a group and requantizes each row).
template <size_t NIn, size_t NOut>
QMCU_DENSE_INLINE void forwardPerChannel(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                         const Requantizer* rq) {
    constexpr size_t kRows = dense_layout::kGroupRows;
    for (size_t g = 0; g < NOut / kRows; ++g) {
        w = variant::groupPerChannel<NIn, kRows>(in, out, w, bias, rq);
        bias += kRows;
        out += kRows;
        rq += kRows;
    }
    constexpr size_t kLast = NOut % kRows;
    if constexpr (kLast != 0) {
        variant::groupPerChannel<NIn, kLast>(in, out, w, bias, rq);
    }
}
}  // namespace dense_kernel

// Which variant this translation unit compiled: "dsp", "dsp-emulated" or "scalar".
#if QMCU_DENSE_FAST_DSP_NATIVE
constexpr const char* kDenseFastVariant = "dsp";
#elif QMCU_DENSE_FAST_DSP
constexpr const char* kDenseFastVariant = "dsp-emulated";
#else
constexpr const char* kDenseFastVariant = "scalar";
#endif

template <size_t NIn, size_t NOut>
struct QDenseFast {
    static_assert(NIn > 0 && NOut > 0, "a dense layer needs inputs and outputs");
    static constexpr size_t kInputs = NIn;
    static constexpr size_t kOutputs = NOut;
    static constexpr size_t kWeightCount = dense_layout::weightCount(NIn, NOut);

    const int16_t* weights;        // kWeightCount values in the kernel layout above, 4-byte aligned
    const int32_t* folded_biases;  // NOut values: bias - input_zero_point * sum_i w[o][i]
    Requantizer requantizer;

    // Small layers are expanded at the call site (no call, no register save); larger ones are one function.
    static constexpr bool kInlined = NIn * NOut <= 64;

    QMCU_DENSE_INLINE void forward(const int8_t* in, int8_t* out) const {
        if constexpr (kInlined) {
            dense_kernel::variant::forward<NIn, NOut>(in, out, weights, folded_biases, requantizer);
        } else {
            forwardOutOfLine(in, out);
        }
    }

  private:
    __attribute__((noinline)) void forwardOutOfLine(const int8_t* in, int8_t* out) const {
        dense_kernel::variant::forward<NIn, NOut>(in, out, weights, folded_biases, requantizer);
    }
};

// Per-channel weights (TFLite/CMSIS-NN's scheme): one weight scale, hence one Requantizer, per output row.
//   qmcu::QDenseFastPC<NIn, NOut>{weights, folded_biases, requantizers}.forward(in, out)
//   out[o] = requantizers[o].apply(bias[o] + sum_i (in[i] - input_zero_point) * w[o][i])
// Same kernel layout, folded biases and accumulation order as QDenseFast (so the same partial-sum bounds);
// each row is requantized with RightShiftRequant when its shift is in [-23, -1], Requantizer::apply otherwise.
template <size_t NIn, size_t NOut>
struct QDenseFastPC {
    static_assert(NIn > 0 && NOut > 0, "a dense layer needs inputs and outputs");
    static constexpr size_t kInputs = NIn;
    static constexpr size_t kOutputs = NOut;
    static constexpr size_t kWeightCount = dense_layout::weightCount(NIn, NOut);

    const int16_t* weights;            // kWeightCount values in the kernel layout, 4-byte aligned
    const int32_t* folded_biases;      // NOut values: bias - input_zero_point * sum_i w[o][i]
    const Requantizer* requantizers;   // NOut values, one per output row

    static constexpr bool kInlined = NIn * NOut <= 64;

    QMCU_DENSE_INLINE void forward(const int8_t* in, int8_t* out) const {
        if constexpr (kInlined) {
            dense_kernel::forwardPerChannel<NIn, NOut>(in, out, weights, folded_biases, requantizers);
        } else {
            forwardOutOfLine(in, out);
        }
    }

  private:
    __attribute__((noinline)) void forwardOutOfLine(const int8_t* in, int8_t* out) const {
        dense_kernel::forwardPerChannel<NIn, NOut>(in, out, weights, folded_biases, requantizers);
    }
};

}  // namespace qmcu
