// Pointwise (1x1, stride 1) convolution on NHWC int8 tensors: a dense layer applied to every pixel
// (spec: conv_reference.conv2d with KH = KW = 1 in tools/qmcu/quant/conv_reference.py).
//
//   qmcu::pointwise<qmcu::PointwiseShape<Pixels, Cin, Cout>>(scratch, PointwiseParams, in, out)      int16 weights
//   qmcu::pointwise<qmcu::PointwiseShape<Pixels, Cin, Cout, 8>>(scratch, PointwiseParams8, in, out)  int8 weights
//   out[p][o] = requant_o(bias[o] + sum_i (in[p][i] - input_zero_point) * w[o][i])
//
// in: Pixels x Cin int8, out: Pixels x Cout int8 (both NHWC, any alignment). out may be in itself (in place)
// when Cout <= Cin: each pixel's inputs are copied to the scratch before its outputs are written. scratch:
// Shape::kScratchBytes, 4-byte aligned, in the caller's arena: conv_scratch::pointwiseBytes(Cin) (int16
// weights: one widened pixel) or pointwise8Bytes(Cin) (int8 weights: four widened pixels).
//
// What the host prepares (tools/qmcu/codegen/conv_layout.py: prepare_pointwise(weight_bits=16 or 8), render_layer):
//   biases[o]  = bias[o] - input_zero_point * sum_i w[o][i]          (int32, "folded"; checked there), so the
//                kernel multiplies the raw int8 inputs: acc[o] = biases[o] + sum_i in[i] * w[o][i], the same
//                integer as the reference's accumulator.
//   weights    = int16 (WeightBits 16): the GEMV layout below, Cout * Kp values (Kp = Cin rounded up to 8);
//                int8 (WeightBits 8): row-major [Cout][Kp], each row in input order, zero padded (half the flash).
//                Either 4-byte aligned.
//   requant    = per output channel (common.hpp's ChannelRequant).
//
// GEMV layout (gemv_layout, shared with conv.hpp, whose "inputs" are im2col columns of depth K = KH*KW*Cin):
// the depth K is padded with zeros to Kp = K rounded up to 8; chunk j holds inputs 8j..8j+7 in the order
//   8j+0, 8j+2, 8j+1, 8j+3, 8j+4, 8j+6, 8j+5, 8j+7        (what SXTB16 and SXTB16 ROR 8 of two words give).
// Output rows go in groups of 4 (the last group has Cout % 4 rows); a group of R rows starting at row o0 is
//   for j in [0, Kp/8): for r in [0, R): the 8 weights of row o0+r for chunk j, in the order above
// so each row's chunk is 4 consecutive words, the int16 pairs that SMLAD multiplies with the widened inputs.
// The widened input column (scratch) holds the inputs in the same order, as int16, zero padded.
//
// Accumulation: every output starts at its folded bias and adds one product per (input, weight) slot of the
// layout; since every product's range contains 0, the host's proof that bias + (all maxima) and bias + (all
// minima) fit int32 covers every partial sum of every order, so the variants below may add in any order and
// never overflow (SMLAD would wrap; the scalar int32 code would be undefined behaviour).
//
// Variants (common.hpp), the same bits:
//   DSP, int16 weights: per pixel, SXTB16 widening of the inputs into the scratch, then per group of 4 rows the
//     biases by one LDM, per chunk of 8 inputs one LDM of the 4 input words and per row one LDM of its 4 weight
//     words and 4 SMLADs (32 MACs in 21 instructions); requantization per row by one LDM of its ChannelScale,
//     RightShiftRequant (AND, ADDS, ADC, SMLAL, ASR), SSAT and BFI, then one four-lane SSUB8/SEL clamp and one
//     word store per group.
//   DSP, int8 weights: four pixels widened into the scratch (interleaved by chunk); per row and chunk one LDM of
//     the 8 weight bytes, four SXTB16, then per pixel one LDM of its input words and 4 SMLADs (32 MACs in 25
//     instructions); the row's four outputs (Cout bytes apart) requantized as depthwise's (common.hpp strided::).
//   Scalar: the same data, int32 multiply-accumulate, run-time sizes (one function for every shape).
//   A layer with `exact` requantizers runs the scalar variant.
#pragma once

#include "common.hpp"

namespace qmcu {

namespace gemv_layout {
constexpr int32_t kChunk = 8;      // inputs per chunk
constexpr int32_t kGroupRows = 4;  // output rows per group
constexpr int32_t paddedDepth(int32_t k) { return kernel_detail::roundUp(k, kChunk); }
constexpr size_t weightCount(int32_t k, int32_t rows) { return static_cast<size_t>(rows) * paddedDepth(k); }
// slot s of a chunk holds input 8j + kSlotInput[s]
constexpr int32_t kSlotInput[8] = {0, 2, 1, 3, 4, 6, 5, 7};
}  // namespace gemv_layout

// WeightBits 16: the GEMV layout above (fastest); 8: int8 weights, row-major [Cout][Kp] in input order (zero
// padded to Kp), half the flash (the kernel unpacks them with SXTB16, four pixels at a time).
template <int32_t Pixels, int32_t Cin, int32_t Cout, int32_t WeightBits = 16>
struct PointwiseShape {
    static_assert(Pixels > 0 && Cin > 0 && Cout > 0, "a pointwise layer needs pixels, inputs and outputs");
    static_assert(WeightBits == 16 || WeightBits == 8, "int16 (GEMV layout) or int8 weights");
    static constexpr int32_t kPixels = Pixels;
    static constexpr int32_t kCin = Cin;
    static constexpr int32_t kCout = Cout;
    static constexpr int32_t kWeightBits = WeightBits;
    static constexpr int32_t kDepth = gemv_layout::paddedDepth(Cin);
    static constexpr size_t kWeightCount = gemv_layout::weightCount(Cin, Cout);
    static constexpr size_t kScratchBytes =
        WeightBits == 16 ? conv_scratch::pointwiseBytes(Cin) : conv_scratch::pointwise8Bytes(Cin);
    static constexpr size_t kInputBytes = static_cast<size_t>(Pixels) * Cin;
    static constexpr size_t kOutputBytes = static_cast<size_t>(Pixels) * Cout;
};

template <typename W>
struct PointwiseParamsT {
    const W* weights;        // Shape::kWeightCount values (int16: GEMV layout; int8: [Cout][Kp]), 4-byte aligned
    const int32_t* biases;   // Cout folded biases: bias - input_zero_point * sum_i w[o][i]
    ChannelRequant requant;  // per output channel
};
using PointwiseParams = PointwiseParamsT<int16_t>;  // PointwiseShape<..., 16>
using PointwiseParams8 = PointwiseParamsT<int8_t>;  // PointwiseShape<..., 8>

namespace gemv {

// ---- scalar variant (also the exact-requantizer path of every variant) ------------------------------

// The column x[0..k) into x16 in the chunk order, zero padded to paddedDepth(k).
QMCU_KERNEL_NOINLINE void widenScalar(const int8_t* x, int32_t k, int16_t* x16) {
    const int32_t kp = gemv_layout::paddedDepth(k);
    for (int32_t j = 0; j < kp; j += gemv_layout::kChunk) {
        for (int32_t s = 0; s < gemv_layout::kChunk; ++s) {
            const int32_t i = j + gemv_layout::kSlotInput[s];
            x16[j + s] = static_cast<int16_t>(i < k ? x[i] : 0);
        }
    }
}

// All `rows` outputs of one column (x16 widened, depth kp): rows in groups of 4, as the layout stores them.
template <class Rq>
QMCU_KERNEL_INLINE void rowsScalar(const int16_t* x16, int32_t kp, const int16_t* w, const int32_t* bias, Rq rq,
                                   int8_t* out, int32_t rows) {
    for (int32_t o0 = 0; o0 < rows; o0 += gemv_layout::kGroupRows) {
        const int32_t r_count = rows - o0 < gemv_layout::kGroupRows ? rows - o0 : gemv_layout::kGroupRows;
        int32_t acc[gemv_layout::kGroupRows];  // rows [0, r_count) are set below
        for (int32_t r = 0; r < r_count; ++r) {
            acc[r] = bias[o0 + r];
        }
        for (int32_t j = 0; j < kp; j += gemv_layout::kChunk) {
            for (int32_t r = 0; r < r_count; ++r, w += gemv_layout::kChunk) {
                int32_t a = acc[r];
                for (int32_t s = 0; s < gemv_layout::kChunk; ++s) {
                    a += x16[j + s] * w[s];
                }
                acc[r] = a;
            }
        }
        for (int32_t r = 0; r < r_count; ++r) {
            out[o0 + r] = static_cast<int8_t>(rq(acc[r], o0 + r));
        }
    }
}

template <class Rq>
QMCU_KERNEL_NOINLINE void pointwiseScalar(int16_t* x16, const int16_t* w, const int32_t* bias, Rq rq,
                                          const int8_t* in, int8_t* out, int32_t pixels, int32_t cin, int32_t cout) {
    const int32_t kp = gemv_layout::paddedDepth(cin);
    for (int32_t p = 0; p < pixels; ++p) {
        widenScalar(in + p * cin, cin, x16);  // before the outputs: in-place use with cout <= cin
        rowsScalar(x16, kp, w, bias, rq, out + p * cout, cout);
    }
}

// int8 weights: the pixel copied to the scratch first (in-place use), then one dot product per row.
template <class Rq>
QMCU_KERNEL_NOINLINE void pointwise8Scalar(int8_t* copy, const int8_t* w, const int32_t* bias, Rq rq,
                                           const int8_t* in, int8_t* out, int32_t pixels, int32_t cin, int32_t cout) {
    const int32_t kp = gemv_layout::paddedDepth(cin);
    for (int32_t p = 0; p < pixels; ++p) {
        for (int32_t i = 0; i < cin; ++i) {
            copy[i] = in[p * cin + i];
            kernel_detail::notALibraryCall();
        }
        const int8_t* row = w;
        for (int32_t o = 0; o < cout; ++o, row += kp) {
            int32_t acc = bias[o];
            for (int32_t i = 0; i < cin; ++i) {
                acc += copy[i] * row[i];
            }
            out[p * cout + o] = static_cast<int8_t>(rq(acc, o));
        }
    }
}

// ---- DSP variant ------------------------------------------------------------------------------------

#if QMCU_KERNELS_DSP

// Pixel inputs x[0..K) widened into x16 (words: (x0, x2), (x1, x3), (x4, x6), (x5, x7) per chunk), zero padded;
// consecutive chunks are ChunkStride words apart (4: contiguous; 4 * P: P pixels interleaved).
template <int32_t K, int32_t ChunkStride = 4>
QMCU_KERNEL_INLINE void widen(const int8_t* x, uint32_t* x16) {
    constexpr int32_t kFull = K / gemv_layout::kChunk;
    for (int32_t j = 0; j < kFull; ++j) {
        const uint32_t lo = kisa::load32(x);
        const uint32_t hi = kisa::load32(x + 4);
        x16[0] = static_cast<uint32_t>(kisa::sxtb16(lo));
        x16[1] = static_cast<uint32_t>(kisa::sxtb16Ror8(lo));
        x16[2] = static_cast<uint32_t>(kisa::sxtb16(hi));
        x16[3] = static_cast<uint32_t>(kisa::sxtb16Ror8(hi));
        x += gemv_layout::kChunk;
        x16 += ChunkStride;
    }
    constexpr int32_t kTail = K % gemv_layout::kChunk;
    if constexpr (kTail != 0) {
        // The last inputs, zero padded to a chunk (never reads past x[K - 1]).
        uint32_t words[2] = {0u, 0u};
        __builtin_memcpy(words, x, kTail);
        x16[0] = static_cast<uint32_t>(kisa::sxtb16(words[0]));
        x16[1] = static_cast<uint32_t>(kisa::sxtb16Ror8(words[0]));
        x16[2] = static_cast<uint32_t>(kisa::sxtb16(words[1]));
        x16[3] = static_cast<uint32_t>(kisa::sxtb16Ror8(words[1]));
    }
}

template <int R>
struct Acc {
    int32_t v[R];
};

// One chunk (8 inputs) for R rows: xp and wp advance past what they read.
#if QMCU_KERNELS_DSP_NATIVE

// LDM needs its register list in ascending order, so the input and weight words live in fixed registers
// (r8-r11 and r4, r5, r12, lr: high ones first, see common.hpp's strided:: note; the accumulators and the two
// pointers get the six others, r0-r3, r6, r7). One asm statement per chunk; it reads memory the compiler cannot
// see through its operands (no register is left for "m" operands), hence the "memory" clobber (which also orders
// it after the stores that widened the inputs).
#define QMCU_GEMV_LDX "ldmia %[xp]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
#define QMCU_GEMV_ROW(A)                                   \
    "ldmia %[wp]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"       \
    "smlad %[" A "], %[x0], %[w0], %[" A "]\n\t"           \
    "smlad %[" A "], %[x1], %[w1], %[" A "]\n\t"           \
    "smlad %[" A "], %[x2], %[w2], %[" A "]\n\t"           \
    "smlad %[" A "], %[x3], %[w3], %[" A "]\n\t"
#define QMCU_GEMV_OPERANDS                                                                                      \
    [xp] "+r"(xp), [wp] "+r"(wp), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [w0] "=&r"(w0), \
        [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)

template <int R>
QMCU_KERNEL_INLINE void macChunk(Acc<R>& acc, const uint32_t*& xp, const uint32_t*& wp) {
    register uint32_t x0 __asm__("r8");
    register uint32_t x1 __asm__("r9");
    register uint32_t x2 __asm__("r10");
    register uint32_t x3 __asm__("r11");
    register uint32_t w0 __asm__("r4");
    register uint32_t w1 __asm__("r5");
    register uint32_t w2 __asm__("r12");
    register uint32_t w3 __asm__("lr");
    if constexpr (R == 4) {
        __asm__(QMCU_GEMV_LDX QMCU_GEMV_ROW("a0") QMCU_GEMV_ROW("a1") QMCU_GEMV_ROW("a2") QMCU_GEMV_ROW("a3")
                : [a0] "+r"(acc.v[0]), [a1] "+r"(acc.v[1]), [a2] "+r"(acc.v[2]), [a3] "+r"(acc.v[3]),
                  QMCU_GEMV_OPERANDS
                : : "memory");
    } else if constexpr (R == 3) {
        __asm__(QMCU_GEMV_LDX QMCU_GEMV_ROW("a0") QMCU_GEMV_ROW("a1") QMCU_GEMV_ROW("a2")
                : [a0] "+r"(acc.v[0]), [a1] "+r"(acc.v[1]), [a2] "+r"(acc.v[2]), QMCU_GEMV_OPERANDS
                : : "memory");
    } else if constexpr (R == 2) {
        __asm__(QMCU_GEMV_LDX QMCU_GEMV_ROW("a0") QMCU_GEMV_ROW("a1")
                : [a0] "+r"(acc.v[0]), [a1] "+r"(acc.v[1]), QMCU_GEMV_OPERANDS
                : : "memory");
    } else {
        __asm__(QMCU_GEMV_LDX QMCU_GEMV_ROW("a0") : [a0] "+r"(acc.v[0]), QMCU_GEMV_OPERANDS : : "memory");
    }
}
#undef QMCU_GEMV_LDX
#undef QMCU_GEMV_ROW
#undef QMCU_GEMV_OPERANDS

#else  // the same on the portable stand-ins

template <int R>
QMCU_KERNEL_INLINE void macChunk(Acc<R>& acc, const uint32_t*& xp, const uint32_t*& wp) {
    const int32_t x[4] = {static_cast<int32_t>(xp[0]), static_cast<int32_t>(xp[1]), static_cast<int32_t>(xp[2]),
                          static_cast<int32_t>(xp[3])};
    xp += 4;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            acc.v[r] = kisa::smlad(x[k], static_cast<int32_t>(wp[k]), acc.v[r]);
        }
        wp += 4;
    }
}

#endif

// One group of R rows over the whole depth (Kp/8 chunks, unrolled up to 16 times): acc starts at the biases.
// (A plain loop, not Unrolled with lambdas: a closure would take the accumulators' addresses, and with the
// "memory" clobber above they would then live in memory.)
template <int32_t Kp, int R>
QMCU_KERNEL_INLINE void macGroup(Acc<R>& acc, const uint32_t* x16, const uint32_t*& wp) {
    constexpr int32_t kChunks = Kp / gemv_layout::kChunk;
    const uint32_t* xp = x16;
    const uint32_t* w = wp;
#pragma GCC unroll 16
    for (int32_t c = 0; c < kChunks; ++c) {
        macChunk<R>(acc, xp, w);
    }
    wp = w;
}

template <int R>
QMCU_KERNEL_INLINE void finishGroup(const Acc<R>& acc, const ChannelScale* s, int8_t* out, uint32_t lo4,
                                    uint32_t hi4) {
    int32_t v[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
        v[r] = s[r].scale(acc.v[r]);
    }
    kisa::storeClamped<R>(out, v, lo4, hi4);
}

template <int R>
QMCU_KERNEL_INLINE void loadBiases(Acc<R>& acc, const int32_t* bias) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
        acc.v[r] = bias[r];
    }
}

#if QMCU_KERNELS_DSP_NATIVE

// One full group of 4 rows, scheduled by hand: the biases by one LDM into the accumulators, every chunk as in
// macChunk, then per row one LDM of its ChannelScale {multiplier, post_shift, round_hi, round_lo} and
// RightShiftRequant::scale (AND, ADDS, ADC, SMLAL, ASR), SSAT and BFI into one word, the four-lane clamp
// (SSUB8/SEL twice) and one word store: 36 instructions for the group's requantization.
// bias, s and out advance past the group, wp past its weights.
//
// Registers: the chunk statement needs 14 at once (4 accumulators, 4 input and 4 weight words, xp and wp), all of
// r0-r12 and lr. The twelve fixed ones take every high register and six low ones, so that the operands GCC places
// get low registers (see common.hpp's strided:: note: with an FPU, an operand reloaded from its stack slot wants
// r0-r7; s, out, lo4 and hi4 live in stack slots across the chunk loop):
//   accumulators a0-a3: r8-r11            input words x0-x3: r0-r3            weight words w0-w3: r4, r5, r12, lr
//   requantization: ChannelScale in r4, r5, r12, lr (the weight registers, dead by then); the AND's scratch is
//   the packed word for row 0 (SSAT overwrites it) and the accumulator of the row before for the others.
// which leaves r6, r7 to the chunk's pointers and r0-r3, r6, r7 to the requantization's five operands.
#define QMCU_GEMV_SCALE_ROW(A, T)                                                                        \
    "ldmia %[s]!, {r4, r5, r12, lr}\n\t"                                                                 \
    "and " T ", " A ", #0x80000000\n\t"                                                                  \
    "adds lr, lr, " T "\n\t"                                                                             \
    "adc r12, r12, " A ", asr #31\n\t"                                                                   \
    "smlal lr, r12, " A ", r4\n\t"                                                                       \
    "asr r12, r12, r5\n\t"

template <int32_t Kp>
QMCU_KERNEL_INLINE void group4(const uint32_t* x16, const uint32_t*& wp, const int32_t*& bias,
                               const ChannelScale*& s, int8_t*& out, uint32_t lo4, uint32_t hi4) {
    register int32_t a0 __asm__("r8");
    register int32_t a1 __asm__("r9");
    register int32_t a2 __asm__("r10");
    register int32_t a3 __asm__("r11");
    register uint32_t x0 __asm__("r0");
    register uint32_t x1 __asm__("r1");
    register uint32_t x2 __asm__("r2");
    register uint32_t x3 __asm__("r3");
    register uint32_t w0 __asm__("r4");
    register uint32_t w1 __asm__("r5");
    register uint32_t w2 __asm__("r12");
    register uint32_t w3 __asm__("lr");
    __asm__("ldmia %[b]!, {%[a0], %[a1], %[a2], %[a3]}"
            : [a0] "=r"(a0), [a1] "=r"(a1), [a2] "=r"(a2), [a3] "=r"(a3), [b] "+r"(bias)
            :
            : "memory");
    const uint32_t* xp = x16;
    const uint32_t* w = wp;
    constexpr int32_t kChunks = Kp / gemv_layout::kChunk;
#pragma GCC unroll 16
    for (int32_t c = 0; c < kChunks; ++c) {
        __asm__("ldmia %[xp]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
                "ldmia %[wp]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
                "smlad %[a0], %[x0], %[w0], %[a0]\n\t"
                "smlad %[a0], %[x1], %[w1], %[a0]\n\t"
                "smlad %[a0], %[x2], %[w2], %[a0]\n\t"
                "smlad %[a0], %[x3], %[w3], %[a0]\n\t"
                "ldmia %[wp]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
                "smlad %[a1], %[x0], %[w0], %[a1]\n\t"
                "smlad %[a1], %[x1], %[w1], %[a1]\n\t"
                "smlad %[a1], %[x2], %[w2], %[a1]\n\t"
                "smlad %[a1], %[x3], %[w3], %[a1]\n\t"
                "ldmia %[wp]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
                "smlad %[a2], %[x0], %[w0], %[a2]\n\t"
                "smlad %[a2], %[x1], %[w1], %[a2]\n\t"
                "smlad %[a2], %[x2], %[w2], %[a2]\n\t"
                "smlad %[a2], %[x3], %[w3], %[a2]\n\t"
                "ldmia %[wp]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
                "smlad %[a3], %[x0], %[w0], %[a3]\n\t"
                "smlad %[a3], %[x1], %[w1], %[a3]\n\t"
                "smlad %[a3], %[x2], %[w2], %[a3]\n\t"
                "smlad %[a3], %[x3], %[w3], %[a3]"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(w),
                  [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [w0] "=&r"(w0), [w1] "=&r"(w1),
                  [w2] "=&r"(w2), [w3] "=&r"(w3)
                :
                : "memory");
    }
    wp = w;
    // The two SSUB8s (only their GE flags matter) write a3's register (dead by then).
    uint32_t packed;
    __asm__ volatile(QMCU_GEMV_SCALE_ROW("%[a0]", "%[pk]") "ssat %[pk], #8, r12\n\t"
            QMCU_GEMV_SCALE_ROW("%[a1]", "%[a0]") "ssat r12, #8, r12\n\t" "bfi %[pk], r12, #8, #8\n\t"
            QMCU_GEMV_SCALE_ROW("%[a2]", "%[a1]") "ssat r12, #8, r12\n\t" "bfi %[pk], r12, #16, #8\n\t"
            QMCU_GEMV_SCALE_ROW("%[a3]", "%[a2]") "ssat r12, #8, r12\n\t" "bfi %[pk], r12, #24, #8\n\t"
            "ssub8 %[a3], %[pk], %[lo]\n\t"
            "sel %[pk], %[pk], %[lo]\n\t"
            "ssub8 %[a3], %[pk], %[hi]\n\t"
            "sel %[pk], %[hi], %[pk]\n\t"
            "str %[pk], [%[out]], #4"
            : [pk] "=&r"(packed), [s] "+r"(s), [out] "+r"(out), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2),
              [a3] "+r"(a3), "=&r"(w0), "=&r"(w1), "=&r"(w2), "=&r"(w3)
            : [lo] "r"(lo4), [hi] "r"(hi4)
            : "memory", "cc");
}
#undef QMCU_GEMV_SCALE_ROW

#endif  // QMCU_KERNELS_DSP_NATIVE

// All Rows outputs of one widened column x16 (depth Kp): the weights, biases and scales of every row.
template <int32_t Kp, int32_t Rows>
QMCU_KERNEL_INLINE void rowsDsp(const uint32_t* x16, const int16_t* weights, const int32_t* bias,
                                const ChannelScale* s, int8_t* out, uint32_t lo4, uint32_t hi4) {
    const uint32_t* wp = reinterpret_cast<const uint32_t*>(weights);
    constexpr int kRows = gemv_layout::kGroupRows;
    for (int32_t g = 0; g < Rows / kRows; ++g) {
#if QMCU_KERNELS_DSP_NATIVE
        group4<Kp>(x16, wp, bias, s, out, lo4, hi4);
#else
        Acc<kRows> acc;
        loadBiases(acc, bias);
        macGroup<Kp, kRows>(acc, x16, wp);
        finishGroup(acc, s, out, lo4, hi4);
        bias += kRows;
        s += kRows;
        out += kRows;
#endif
    }
    constexpr int kLast = Rows % kRows;
    if constexpr (kLast != 0) {
        Acc<kLast> acc;
        loadBiases(acc, bias);
        macGroup<Kp, kLast>(acc, x16, wp);
        finishGroup(acc, s, out, lo4, hi4);
    }
}

template <int32_t Pixels, int32_t Cin, int32_t Cout>
QMCU_KERNEL_NOINLINE void pointwiseDsp(uint32_t* x16, const PointwiseParams& p, const int8_t* in, int8_t* out) {
    constexpr int32_t kDepth = gemv_layout::paddedDepth(Cin);
    const uint32_t lo4 = kisa::replicate8(p.requant.qmin);
    const uint32_t hi4 = kisa::replicate8(p.requant.qmax);
    for (int32_t px = 0; px < Pixels; ++px) {
        widen<Cin>(in, x16);  // before the outputs: in-place use with Cout <= Cin
        rowsDsp<kDepth, Cout>(x16, p.weights, p.biases, p.requant.scales, out, lo4, hi4);
        in += Cin;
        out += Cout;
    }
}

// ---- int8 weights (DSP): four pixels share every unpacked weight chunk --------------------------------

// P pixels' inputs widened into x16, interleaved: chunk j of pixel p at words (j * P + p) * 4.
template <int32_t K, int P>
QMCU_KERNEL_INLINE void widenPixels(const int8_t* x, uint32_t* x16) {
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) {
        widen<K, 4 * P>(x + p * K, x16 + 4 * p);
    }
}

#if QMCU_KERNELS_DSP_NATIVE
// One chunk of one row for P pixels: LDM of the row's 8 weight bytes, four SXTB16 into the pairs (w0,w2), (w1,w3),
// (w4,w6), (w5,w7) (r4, r5, r12, lr), then per pixel one LDM of its 4 input words (r8-r11) and 4 SMLADs: macChunk's
// registers. The fixed registers take every high one and two low ones (see common.hpp's strided:: note); the P
// accumulators and the two pointers get r0-r3, r6, r7.
#define QMCU_PW8_UNPACK                          \
    "ldmia %[wp]!, {r12, lr}\n\t"                \
    "sxtb16 r4, r12\n\t"                         \
    "sxtb16 r5, r12, ror #8\n\t"                 \
    "sxtb16 r12, lr\n\t"                         \
    "sxtb16 lr, lr, ror #8\n\t"
#define QMCU_PW8_PIXEL(A)                        \
    "ldmia %[xp]!, {r8, r9, r10, r11}\n\t"       \
    "smlad %[" A "], r8, r4, %[" A "]\n\t"       \
    "smlad %[" A "], r9, r5, %[" A "]\n\t"       \
    "smlad %[" A "], r10, r12, %[" A "]\n\t"     \
    "smlad %[" A "], r11, lr, %[" A "]\n\t"
#define QMCU_PW8_CLOBBERS                                                                                 \
    [xp] "+r"(xp), [wp] "+r"(wp), "=&r"(r4), "=&r"(r5), "=&r"(r8), "=&r"(r9), "=&r"(r10), "=&r"(r11), \
        "=&r"(r12), "=&r"(lr)

template <int P>
QMCU_KERNEL_INLINE void macChunk8(int32_t (&acc)[P], const uint32_t*& xp, const uint32_t*& wp) {
    register uint32_t r4 __asm__("r4");
    register uint32_t r5 __asm__("r5");
    register uint32_t r8 __asm__("r8");
    register uint32_t r9 __asm__("r9");
    register uint32_t r10 __asm__("r10");
    register uint32_t r11 __asm__("r11");
    register uint32_t r12 __asm__("r12");
    register uint32_t lr __asm__("lr");
    if constexpr (P == 4) {
        __asm__(QMCU_PW8_UNPACK QMCU_PW8_PIXEL("a0") QMCU_PW8_PIXEL("a1") QMCU_PW8_PIXEL("a2") QMCU_PW8_PIXEL("a3")
                : [a0] "+r"(acc[0]), [a1] "+r"(acc[1]), [a2] "+r"(acc[2]), [a3] "+r"(acc[3]), QMCU_PW8_CLOBBERS
                :
                : "memory");
    } else if constexpr (P == 3) {
        __asm__(QMCU_PW8_UNPACK QMCU_PW8_PIXEL("a0") QMCU_PW8_PIXEL("a1") QMCU_PW8_PIXEL("a2")
                : [a0] "+r"(acc[0]), [a1] "+r"(acc[1]), [a2] "+r"(acc[2]), QMCU_PW8_CLOBBERS
                :
                : "memory");
    } else if constexpr (P == 2) {
        __asm__(QMCU_PW8_UNPACK QMCU_PW8_PIXEL("a0") QMCU_PW8_PIXEL("a1")
                : [a0] "+r"(acc[0]), [a1] "+r"(acc[1]), QMCU_PW8_CLOBBERS
                :
                : "memory");
    } else {
        __asm__(QMCU_PW8_UNPACK QMCU_PW8_PIXEL("a0") : [a0] "+r"(acc[0]), QMCU_PW8_CLOBBERS : : "memory");
    }
}
#undef QMCU_PW8_UNPACK
#undef QMCU_PW8_PIXEL
#undef QMCU_PW8_CLOBBERS
#else
template <int P>
QMCU_KERNEL_INLINE void macChunk8(int32_t (&acc)[P], const uint32_t*& xp, const uint32_t*& wp) {
    const int32_t w[4] = {kisa::sxtb16(wp[0]), kisa::sxtb16Ror8(wp[0]), kisa::sxtb16(wp[1]), kisa::sxtb16Ror8(wp[1])};
    wp += 2;
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) {
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            acc[p] = kisa::smlad(static_cast<int32_t>(xp[k]), w[k], acc[p]);
        }
        xp += 4;
    }
}
#endif

// All Cout rows of P pixels (x16 interleaved, depth Kp): rows one at a time; out is the first pixel's output.
template <int32_t Kp, int32_t Cout, int P, bool kClamp>
QMCU_KERNEL_INLINE void rows8(const uint32_t* x16, const int8_t* weights, const int32_t* bias, const ChannelScale* s,
                              int8_t* out, uint32_t lo4, uint32_t hi4) {
    const uint32_t* wp = reinterpret_cast<const uint32_t*>(weights);
    for (int32_t o = 0; o < Cout; ++o) {
        int32_t acc[P];
        const int32_t b = bias[o];
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) {
            acc[p] = b;
        }
        const uint32_t* xp = x16;
#pragma GCC unroll 16
        for (int32_t j = 0; j < Kp / gemv_layout::kChunk; ++j) {
            macChunk8<P>(acc, xp, wp);
        }
        strided::finishLanes<P, Cout, kClamp>(acc, s + o, out + o, lo4, hi4);
    }
}

template <int32_t Pixels, int32_t Cin, int32_t Cout, bool kClamp>
QMCU_KERNEL_INLINE void pointwise8Pixels(uint32_t* x16, const PointwiseParams8& p, const int8_t* in, int8_t* out) {
    constexpr int32_t kDepth = gemv_layout::paddedDepth(Cin);
    constexpr int kGroup = 4;
    const uint32_t lo4 = kisa::replicate8(p.requant.qmin);
    const uint32_t hi4 = kisa::replicate8(p.requant.qmax);
    for (int32_t px = 0; px + kGroup <= Pixels; px += kGroup) {
        widenPixels<Cin, kGroup>(in, x16);  // before the outputs: in-place use with Cout <= Cin
        rows8<kDepth, Cout, kGroup, kClamp>(x16, p.weights, p.biases, p.requant.scales, out, lo4, hi4);
        in += kGroup * Cin;
        out += kGroup * Cout;
    }
    constexpr int kLast = Pixels % kGroup;
    if constexpr (kLast != 0) {
        widenPixels<Cin, kLast>(in, x16);
        rows8<kDepth, Cout, kLast, kClamp>(x16, p.weights, p.biases, p.requant.scales, out, lo4, hi4);
    }
}

template <int32_t Pixels, int32_t Cin, int32_t Cout>
QMCU_KERNEL_NOINLINE void pointwise8Dsp(uint32_t* x16, const PointwiseParams8& p, const int8_t* in, int8_t* out) {
    if (p.requant.qmin == -128 && p.requant.qmax == 127) {
        pointwise8Pixels<Pixels, Cin, Cout, false>(x16, p, in, out);  // SSAT is the whole clamp
    } else {
        pointwise8Pixels<Pixels, Cin, Cout, true>(x16, p, in, out);
    }
}

#endif  // QMCU_KERNELS_DSP

}  // namespace gemv

// The entry points (see the top of this file): int16 weights (PointwiseParams) and int8 weights (PointwiseParams8).
template <class Shape>
QMCU_KERNEL_INLINE void pointwise(void* scratch, const PointwiseParams& p, const int8_t* in, int8_t* out) {
    static_assert(Shape::kWeightBits == 16, "int16 weights: PointwiseShape<..., 16>");
    constexpr int32_t kPixels = Shape::kPixels;
    constexpr int32_t kCin = Shape::kCin;
    constexpr int32_t kCout = Shape::kCout;
    if (kernel_detail::kExactRequantCompiled && p.requant.scales == nullptr) {
        gemv::pointwiseScalar(static_cast<int16_t*>(scratch), p.weights, p.biases,
                              kernel_detail::ExactRequant{p.requant.exact}, in, out, kPixels, kCin, kCout);
        return;
    }
#if QMCU_KERNELS_DSP
    gemv::pointwiseDsp<kPixels, kCin, kCout>(static_cast<uint32_t*>(scratch), p, in, out);
#else
    gemv::pointwiseScalar(static_cast<int16_t*>(scratch), p.weights, p.biases,
                          kernel_detail::FastRequant{p.requant.scales, p.requant.qmin, p.requant.qmax}, in, out,
                          kPixels, kCin, kCout);
#endif
}

template <class Shape>
QMCU_KERNEL_INLINE void pointwise(void* scratch, const PointwiseParams8& p, const int8_t* in, int8_t* out) {
    static_assert(Shape::kWeightBits == 8, "int8 weights: PointwiseShape<..., 8>");
    constexpr int32_t kPixels = Shape::kPixels;
    constexpr int32_t kCin = Shape::kCin;
    constexpr int32_t kCout = Shape::kCout;
    if (kernel_detail::kExactRequantCompiled && p.requant.scales == nullptr) {
        gemv::pointwise8Scalar(static_cast<int8_t*>(scratch), p.weights, p.biases,
                               kernel_detail::ExactRequant{p.requant.exact}, in, out, kPixels, kCin, kCout);
        return;
    }
#if QMCU_KERNELS_DSP
    gemv::pointwise8Dsp<kPixels, kCin, kCout>(static_cast<uint32_t*>(scratch), p, in, out);
#else
    gemv::pointwise8Scalar(static_cast<int8_t*>(scratch), p.weights, p.biases,
                           kernel_detail::FastRequant{p.requant.scales, p.requant.qmin, p.requant.qmax}, in, out,
                           kPixels, kCin, kCout);
#endif
}

}  // namespace qmcu
