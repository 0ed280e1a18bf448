// What the convolution kernel family (conv.hpp, pointwise.hpp, depthwise.hpp, pool.hpp, add.hpp) shares:
// the variant switch, the per-output-channel requantizer tables, the scratch sizes, the DSP instructions
// (real ones on a core with the DSP extension, portable stand-ins with their exact semantics elsewhere), and
// the hand-scheduled requantization of several outputs of one channel (strided::).
//
// Every entry point has one signature: op<Shape>(void* scratch, const Params&, inputs..., int8_t* out), the
// shape (sizes, strides, padding) a compile-time type, the parameters run-time data the host prepares
// (tools/qmcu/codegen/conv_layout.py renders both). scratch: Shape::kScratchBytes, 4-byte aligned (nullptr
// when 0). No heap, no exceptions, no RTTI, no C library (freestanding at STD=0; Cortex-M0 calls libgcc's
// division and 64-bit multiply helpers).
//
// Variants (one signature per kernel, the same bits; chosen at compile time like qdense_fast.hpp's):
//   DSP    (__ARM_FEATURE_DSP and an optimised build: Cortex-M4/M7/M33): SXTB16/SMLAD/SSUB8/SEL/SXTAB16 code.
//   scalar (Cortex-M0/M3, the host, -O0 builds): plain int32 C++, run-time shapes, one compact function per op.
// QMCU_KERNELS_FORCE_SCALAR=1 forces the scalar variant; QMCU_KERNELS_EMULATE_DSP=1 compiles the DSP variant on
// a core without the instructions, on portable stand-ins (the host tests run that code path too). These switch
// this folder's kernels only (qdense_fast.hpp has its own QMCU_DENSE_* pair).
//
// Per-channel requantization (ChannelRequant): the host (tools/qmcu/codegen/conv_layout.py) gives every output
// channel c either
//   scales[c] (ChannelScale): RightShiftRequant's single-rounding constants, when EVERY channel's shift is in
//             [-23, -1] (the usual case): out = clamp(RightShiftRequant::scale(acc), qmin, qmax); or
//   exact[c]  (Requantizer, with the layer's zero point and clamp): Requantizer::apply(acc), when some shift is
//             outside [-23, -1]; the kernels then run their scalar variant (compact, out of line) for that layer.
// Either way the result is Requantizer{multiplier[c], shift[c], zero_point, qmin, qmax}.apply(acc) bit for bit.
// QMCU_KERNELS_NO_EXACT_REQUANT=1 compiles the second case out (see kernel_detail::kExactRequantCompiled).
#pragma once

#include "../config.hpp"
#include "../qaffine.hpp"
#include "../qdense_fast.hpp"

#if defined(QMCU_KERNELS_FORCE_SCALAR) && QMCU_KERNELS_FORCE_SCALAR
#define QMCU_KERNELS_DSP 0
#define QMCU_KERNELS_DSP_NATIVE 0
#elif defined(__ARM_FEATURE_DSP) && defined(__OPTIMIZE__)
#define QMCU_KERNELS_DSP 1
#define QMCU_KERNELS_DSP_NATIVE 1
#elif defined(QMCU_KERNELS_EMULATE_DSP) && QMCU_KERNELS_EMULATE_DSP
#define QMCU_KERNELS_DSP 1
#define QMCU_KERNELS_DSP_NATIVE 0
#else
#define QMCU_KERNELS_DSP 0
#define QMCU_KERNELS_DSP_NATIVE 0
#endif

#if QMCU_KERNELS_DSP_NATIVE
#include <arm_acle.h>
#if defined(__ARM_BIG_ENDIAN)
#error "qmcu kernels: the prepared layouts pair int16 values as little-endian words"
#endif
#endif

#if defined(__GNUC__)
#define QMCU_KERNEL_INLINE inline __attribute__((always_inline))
#define QMCU_KERNEL_LAMBDA_INLINE __attribute__((always_inline))
#define QMCU_KERNEL_NOINLINE inline __attribute__((noinline))
#else
#define QMCU_KERNEL_INLINE inline
#define QMCU_KERNEL_LAMBDA_INLINE
#define QMCU_KERNEL_NOINLINE inline
#endif

namespace qmcu {

// Which variant this translation unit compiled for the kernels of this folder: "dsp", "dsp-emulated", "scalar".
#if QMCU_KERNELS_DSP_NATIVE
constexpr const char* kKernelsVariant = "dsp";
#elif QMCU_KERNELS_DSP
constexpr const char* kKernelsVariant = "dsp-emulated";
#else
constexpr const char* kKernelsVariant = "scalar";
#endif

// One output channel's scaling in RightShiftRequant's form (qdense_fast.hpp): for the channel's
// Requantizer{multiplier, shift, zero_point, ...} with shift in [-23, -1],
//   scale(acc) = multiplyByQuantizedMultiplier(acc, multiplier, shift) + zero_point   for every int32 acc.
struct ChannelScale {
    int32_t multiplier;  // Q0.31, in [0, 2^31)
    int32_t post_shift;  // -shift - 1, in [0, 22]
    int32_t round_hi;    // the rounding constant R = round_hi * 2^32 + round_lo, the zero point folded in
    uint32_t round_lo;   // (RightShiftRequant::from computes both)

    QMCU_KERNEL_INLINE constexpr int32_t scale(int32_t acc) const {
        return RightShiftRequant{multiplier, post_shift, round_hi, round_lo, 0, 0}.scale(acc);
    }
};

// The requantization of a layer with one requantizer per output channel (see the top of this file).
struct ChannelRequant {
    const ChannelScale* scales;  // one per output channel, or nullptr when `exact` is used
    const Requantizer* exact;    // one per output channel (layer zero point and clamp), or nullptr
    int32_t qmin;                // the layer's clamp, int8 (a fused ReLU: qmin = output zero point)
    int32_t qmax;
};

namespace kernel_detail {

// QMCU_KERNELS_NO_EXACT_REQUANT=1 leaves the exact-requantizer path (the scalar variant with Requantizer::apply,
// for a layer with a shift outside [-23, -1]) out of every image: about 3 KB of code an application whose layers
// all have ChannelScale tables never runs. conv_layout.render_layer makes a layer that needs it an #error then.
#if defined(QMCU_KERNELS_NO_EXACT_REQUANT) && QMCU_KERNELS_NO_EXACT_REQUANT
constexpr bool kExactRequantCompiled = false;
#else
constexpr bool kExactRequantCompiled = true;
#endif

// Per-output requantization policies of the scalar variant.
struct FastRequant {
    const ChannelScale* scales;
    int32_t qmin;
    int32_t qmax;
    QMCU_KERNEL_INLINE int32_t operator()(int32_t acc, int32_t channel) const {
        const int32_t v = scales[channel].scale(acc);
        return v < qmin ? qmin : (v > qmax ? qmax : v);
    }
};
struct ExactRequant {
    const Requantizer* exact;
    QMCU_KERNEL_INLINE int32_t operator()(int32_t acc, int32_t channel) const { return exact[channel].apply(acc); }
};

constexpr int32_t roundUp(int32_t v, int32_t m) { return (v + m - 1) / m * m; }

// Placed in a fill or copy loop: GCC cannot turn the loop into a call to memset/memcpy, so the kernels need no C
// library (images at STD=0 link libgcc only).
QMCU_KERNEL_INLINE void notALibraryCall() { __asm__ volatile(""); }

}  // namespace kernel_detail

// Scratch bytes each kernel needs in the caller's arena (4-byte aligned); mirrored by conv_layout.py's
// scratch_bytes functions (tools/qmcu/codegen/conv_layout.py): both sides must change together.
namespace conv_scratch {
// pointwise, int16 weights: the pixel's inputs widened to int16, Cin rounded up to 8 values.
constexpr size_t pointwiseBytes(int32_t cin) { return static_cast<size_t>(2 * kernel_detail::roundUp(cin, 8)); }
// pointwise, int8 weights: four pixels' inputs widened to int16 (interleaved by chunk).
constexpr size_t pointwise8Bytes(int32_t cin) { return 4 * pointwiseBytes(cin); }
// conv2d: one im2col column, KH*KW*Cin rounded up to 8: widened (int16) and gathered (int8).
constexpr size_t conv2dBytes(int32_t kh, int32_t kw, int32_t cin) {
    return static_cast<size_t>(3 * kernel_detail::roundUp(kh * kw * cin, 8));
}
// depthwise: one padded input channel plane in int16: (H + pads) rows of (W + pads + 1, rounded up to even)
// values (the extra column is read, times a zero weight, by the pairs of an odd-width kernel).
constexpr int32_t depthwisePlaneStride(int32_t w, int32_t pad_left, int32_t pad_right) {
    return kernel_detail::roundUp(w + pad_left + pad_right + 1, 2);
}
constexpr size_t depthwiseBytes(int32_t h, int32_t w, int32_t pad_top, int32_t pad_bottom, int32_t pad_left,
                                int32_t pad_right) {
    return static_cast<size_t>(2 * (h + pad_top + pad_bottom) * depthwisePlaneStride(w, pad_left, pad_right));
}
// depthwise, int8 weights: one output channel's pair words as bytes (KH * ceil(KW/2) pairs, rounded up to even,
// 2 bytes each); the scratch adds the same channel unpacked to int16 (twice that).
constexpr size_t depthwise8ChannelBytes(int32_t kh, int32_t kw) {
    return static_cast<size_t>(2 * kernel_detail::roundUp(kh * ((kw + 1) / 2), 2));
}
}  // namespace conv_scratch

namespace kisa {

QMCU_KERNEL_INLINE uint32_t load32(const void* p) {
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);  // LDR; unaligned access is allowed on ARMv7E-M and ARMv8-M mainline
    return v;
}
QMCU_KERNEL_INLINE void store32(void* p, uint32_t v) { __builtin_memcpy(p, &v, sizeof v); }

// Keeps a value in a register where GCC would rather rematerialise it (see qdense_dsp.hpp's opaque).
QMCU_KERNEL_INLINE int32_t opaque(int32_t v) {
#if QMCU_KERNELS_DSP_NATIVE
    __asm__("" : "+r"(v));
#endif
    return v;
}

#if QMCU_KERNELS_DSP_NATIVE

QMCU_KERNEL_INLINE int32_t sxtb16(uint32_t x) { return __sxtb16(static_cast<int32_t>(x)); }
QMCU_KERNEL_INLINE int32_t sxtb16Ror8(uint32_t x) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
// acc + sign-extended bytes 0 and 2 (resp. 1 and 3) of x, in two 16-bit lanes (each lane wraps mod 2^16).
QMCU_KERNEL_INLINE uint32_t sxtab16(uint32_t acc, uint32_t x) {
    return static_cast<uint32_t>(__sxtab16(static_cast<int32_t>(acc), static_cast<int32_t>(x)));
}
QMCU_KERNEL_INLINE uint32_t sxtab16Ror8(uint32_t acc, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}
QMCU_KERNEL_INLINE int32_t smlad(int32_t a, int32_t b, int32_t acc) { return __smlad(a, b, acc); }
QMCU_KERNEL_INLINE int32_t ssat8(int32_t v) { return __ssat(v, 8); }
// (lo & 0xFFFF) | (hi << 16): PKHBT.
QMCU_KERNEL_INLINE int32_t pack16(int32_t lo, int32_t hi) {
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}
// Per signed byte lane: max(a, b).
QMCU_KERNEL_INLINE uint32_t maxBytes(uint32_t a, uint32_t b) {
    (void)__ssub8(static_cast<int32_t>(a), static_cast<int32_t>(b));  // GE[k] = a[k] >= b[k]
    return __sel(a, b);
}
// Per signed byte lane: min(max(v, lo), hi) (lo <= hi in every lane).
QMCU_KERNEL_INLINE uint32_t clampBytes(uint32_t v, uint32_t lo, uint32_t hi) {
    (void)__ssub8(static_cast<int32_t>(v), static_cast<int32_t>(lo));
    v = __sel(v, lo);
    (void)__ssub8(static_cast<int32_t>(v), static_cast<int32_t>(hi));
    return __sel(hi, v);
}
// floor((a * b + 2^31) / 2^32): SMMULR.
QMCU_KERNEL_INLINE int32_t smmulr(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#else  // portable stand-ins with the instructions' exact semantics

QMCU_KERNEL_INLINE int32_t lane16(uint32_t x, int k) { return static_cast<int16_t>(static_cast<uint16_t>(x >> (16 * k))); }
QMCU_KERNEL_INLINE int32_t lane8(uint32_t x, int k) { return static_cast<int8_t>(static_cast<uint8_t>(x >> (8 * k))); }
QMCU_KERNEL_INLINE int32_t pack16(int32_t lo, int32_t hi) {
    return static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xFFFFu) | (static_cast<uint32_t>(hi) << 16));
}
QMCU_KERNEL_INLINE int32_t sxtb16(uint32_t x) { return pack16(lane8(x, 0), lane8(x, 2)); }
QMCU_KERNEL_INLINE int32_t sxtb16Ror8(uint32_t x) { return pack16(lane8(x, 1), lane8(x, 3)); }
QMCU_KERNEL_INLINE uint32_t sxtab16(uint32_t acc, uint32_t x) {
    return static_cast<uint32_t>(pack16(lane16(acc, 0) + lane8(x, 0), lane16(acc, 1) + lane8(x, 2)));
}
QMCU_KERNEL_INLINE uint32_t sxtab16Ror8(uint32_t acc, uint32_t x) {
    return static_cast<uint32_t>(pack16(lane16(acc, 0) + lane8(x, 1), lane16(acc, 1) + lane8(x, 3)));
}
QMCU_KERNEL_INLINE int32_t smlad(int32_t a, int32_t b, int32_t acc) {
    // SMLAD wraps modulo 2^32 (it only sets the Q flag); conv_layout.py proves no partial sum leaves int32.
    const uint32_t ua = static_cast<uint32_t>(a);
    const uint32_t ub = static_cast<uint32_t>(b);
    const int64_t sum = int64_t{acc} + lane16(ua, 0) * lane16(ub, 0) + lane16(ua, 1) * lane16(ub, 1);
    return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum)));
}
QMCU_KERNEL_INLINE int32_t ssat8(int32_t v) { return v < -128 ? -128 : (v > 127 ? 127 : v); }
QMCU_KERNEL_INLINE uint32_t maxBytes(uint32_t a, uint32_t b) {
    uint32_t out = 0;
    for (int k = 0; k < 4; ++k) {
        const int32_t x = lane8(a, k) >= lane8(b, k) ? lane8(a, k) : lane8(b, k);
        out |= (static_cast<uint32_t>(x) & 0xFFu) << (8 * k);
    }
    return out;
}
QMCU_KERNEL_INLINE uint32_t clampBytes(uint32_t v, uint32_t lo, uint32_t hi) {
    uint32_t out = 0;
    for (int k = 0; k < 4; ++k) {
        const int32_t x = lane8(v, k);
        const int32_t l = lane8(lo, k);
        const int32_t h = lane8(hi, k);
        out |= (static_cast<uint32_t>(x < l ? l : (x > h ? h : x)) & 0xFFu) << (8 * k);
    }
    return out;
}
QMCU_KERNEL_INLINE int32_t smmulr(int32_t a, int32_t b) {
    return static_cast<int32_t>((int64_t{a} * b + (int64_t{1} << 31)) >> 32);
}

#endif

// v's low byte in all four byte lanes.
QMCU_KERNEL_INLINE uint32_t replicate8(int32_t v) {
    return (static_cast<uint32_t>(v) & 0xFFu) * static_cast<uint32_t>(opaque(0x01010101));
}

// A group of R (1..4) int8 values, v[0] in the lowest byte lane, saturated to int8 and clamped to [lo, hi]
// (qmin/qmax in every lane), stored at out (unaligned allowed).
template <int R>
QMCU_KERNEL_INLINE void storeClamped(int8_t* out, const int32_t* v, uint32_t lo4, uint32_t hi4) {
    static_assert(R >= 1 && R <= 4, "one to four lanes");
    // clamp(v, qmin, qmax) = clamp(ssat8(v), qmin, qmax) because [qmin, qmax] is inside int8.
    uint32_t packed = static_cast<uint32_t>(ssat8(v[0])) & 0xFFu;
#pragma GCC unroll 4
    for (int k = 1; k < R; ++k) {
        packed |= (static_cast<uint32_t>(ssat8(v[k])) & 0xFFu) << (8 * k);
    }
    packed = clampBytes(packed, lo4, hi4);
    if constexpr (R == 4) {
        store32(out, packed);
    } else {
#pragma GCC unroll 4
        for (int k = 0; k < R; ++k) {
            out[k] = static_cast<int8_t>(static_cast<uint8_t>(packed >> (8 * k)));
        }
    }
}

}  // namespace kisa

// Requantization of several outputs of ONE channel that lie Step bytes apart (depthwise columns, int8-weight
// pointwise pixels), scheduled by hand on the DSP cores: one LDM of the channel's ChannelScale into r8-r11, then
// per lane RightShiftRequant::scale and SSAT, and either one packed four-lane clamp (SSUB8/SEL twice) or, when the
// layer's clamp is all of int8, nothing more (SSAT is the clamp); byte stores with immediate offsets.
//
// Fixed registers in the hand-scheduled asm (here, pointwise.hpp, depthwise.hpp) are high ones (r8-r12, lr) first,
// and every statement leaves GCC enough LOW registers (r0-r7) for the operands it places. On a core with an FPU
// (any -mfpu, so every FLOAT=1 corner of the DSP boards) GCC moves an int between a register and a stack slot with
// the VFP move pattern, whose memory alternatives prefer r0-r7, and the reload register of an asm operand that
// lives in a stack slot (a pointer or clamp word spilled around a loop that takes every register) inherits that
// class; with the low registers fixed by the statement such an operand has no register left: "'asm' operand has
// impossible constraints", in the FLOAT=1 corners only. Low registers left to GCC, per statement:
//   pointwise group4: chunk r6, r7 (xp, wp); requantization r0-r3, r6, r7 (5 operands)
//   pointwise macChunk, macChunk8: r0-r3, r6, r7 (R + 2 or P + 2 <= 6 operands)
//   depthwise macTile3x2: r0-r3, r6, r7 (and r12, lr; T + 3 <= 8); strided:: below: r0-r7 (and r12, lr; <= 9)
namespace strided {
#if QMCU_KERNELS_DSP_NATIVE
// One lane of a tile's requantization: RightShiftRequant::scale (AND, ADDS, ADC, SMLAL, ASR) with the channel's
// ChannelScale {multiplier, post_shift, round_hi, round_lo} in r8, r9, r10, r11, then SSAT; the value ends in H,
// T is scratch (the low word).
#define QMCU_KERNEL_SCALE_LANE(A, T, H)       \
    "and " T ", " A ", #0x80000000\n\t"       \
    "adds " T ", " T ", r11\n\t"              \
    "adc " H ", r10, " A ", asr #31\n\t"      \
    "smlal " T ", " H ", " A ", r8\n\t"       \
    "asr " H ", " H ", r9\n\t"                \
    "ssat " H ", #8, " H "\n\t"
#define QMCU_KERNEL_SCALE_REGS                \
    register uint32_t r8 __asm__("r8");       \
    register uint32_t r9 __asm__("r9");       \
    register uint32_t r10 __asm__("r10");     \
    register uint32_t r11 __asm__("r11")
#define QMCU_KERNEL_SCALE_CLOBBERS "=&r"(r8), "=&r"(r9), "=&r"(r10), "=&r"(r11)

// Four lanes, clamped to [qmin, qmax] (lo4/hi4) as one packed word, stored Step bytes apart. The scratch of lane 0
// is the packed word (its BFI overwrites the low byte, the later lanes' BFIs the rest), of lane k the accumulator
// of lane k - 1 (dead by then); the SSUB8s (only their GE flags matter) and the byte shifts write a3's register.
template <int32_t Step>
QMCU_KERNEL_INLINE void finish4Clamped(const int32_t* acc, const ChannelScale* scale, int8_t* out, uint32_t lo4,
                                       uint32_t hi4) {
    QMCU_KERNEL_SCALE_REGS;
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    uint32_t pk;
    uint32_t h = reinterpret_cast<uintptr_t>(scale);  // the scale pointer, then each lane's value
    __asm__ volatile("ldmia %[h], {r8, r9, r10, r11}\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a0]", "%[pk]", "%[h]") "bfi %[pk], %[h], #0, #8\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a1]", "%[a0]", "%[h]") "bfi %[pk], %[h], #8, #8\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a2]", "%[a1]", "%[h]") "bfi %[pk], %[h], #16, #8\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a3]", "%[a2]", "%[h]") "bfi %[pk], %[h], #24, #8\n\t"
                     "ssub8 %[a3], %[pk], %[lo]\n\t"
                     "sel %[pk], %[pk], %[lo]\n\t"
                     "ssub8 %[a3], %[pk], %[hi]\n\t"
                     "sel %[pk], %[hi], %[pk]\n\t"
                     "strb %[pk], [%[out]]\n\t"
                     "lsr %[a3], %[pk], #8\n\t"
                     "strb %[a3], [%[out], %[c1]]\n\t"
                     "lsr %[a3], %[pk], #16\n\t"
                     "strb %[a3], [%[out], %[c2]]\n\t"
                     "lsr %[a3], %[pk], #24\n\t"
                     "strb %[a3], [%[out], %[c3]]"
                     : [pk] "=&r"(pk), [h] "+&r"(h), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                       QMCU_KERNEL_SCALE_CLOBBERS
                     : [lo] "r"(lo4), [hi] "r"(hi4), [out] "r"(out), [c1] "n"(Step), [c2] "n"(2 * Step),
                       [c3] "n"(3 * Step)
                     : "memory", "cc");
}

// Four lanes of a layer whose clamp is all of int8 (SSAT is the clamp): each lane stored as it is computed.
template <int32_t Step>
QMCU_KERNEL_INLINE void finish4Saturated(const int32_t* acc, const ChannelScale* scale, int8_t* out) {
    QMCU_KERNEL_SCALE_REGS;
    uint32_t t;
    uint32_t h = reinterpret_cast<uintptr_t>(scale);
    __asm__ volatile("ldmia %[h], {r8, r9, r10, r11}\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a0]", "%[t]", "%[h]") "strb %[h], [%[out]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a1]", "%[t]", "%[h]") "strb %[h], [%[out], %[c1]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a2]", "%[t]", "%[h]") "strb %[h], [%[out], %[c2]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a3]", "%[t]", "%[h]") "strb %[h], [%[out], %[c3]]"
                     : [t] "=&r"(t), [h] "+&r"(h), QMCU_KERNEL_SCALE_CLOBBERS
                     : [a0] "r"(acc[0]), [a1] "r"(acc[1]), [a2] "r"(acc[2]), [a3] "r"(acc[3]), [out] "r"(out),
                       [c1] "n"(Step), [c2] "n"(2 * Step), [c3] "n"(3 * Step)
                     : "memory", "cc");
}

// Five lanes of a layer whose clamp is all of int8 (depthwise tiles of 5): finish4Saturated and one more lane on
// the same ChannelScale registers (one LDM and no address arithmetic for the fifth lane).
template <int32_t Step>
QMCU_KERNEL_INLINE void finish5Saturated(const int32_t* acc, const ChannelScale* scale, int8_t* out) {
    QMCU_KERNEL_SCALE_REGS;
    uint32_t t;
    uint32_t h = reinterpret_cast<uintptr_t>(scale);
    __asm__ volatile("ldmia %[h], {r8, r9, r10, r11}\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a0]", "%[t]", "%[h]") "strb %[h], [%[out]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a1]", "%[t]", "%[h]") "strb %[h], [%[out], %[c1]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a2]", "%[t]", "%[h]") "strb %[h], [%[out], %[c2]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a3]", "%[t]", "%[h]") "strb %[h], [%[out], %[c3]]\n\t"
                     QMCU_KERNEL_SCALE_LANE("%[a4]", "%[t]", "%[h]") "strb %[h], [%[out], %[c4]]"
                     : [t] "=&r"(t), [h] "+&r"(h), QMCU_KERNEL_SCALE_CLOBBERS
                     : [a0] "r"(acc[0]), [a1] "r"(acc[1]), [a2] "r"(acc[2]), [a3] "r"(acc[3]), [a4] "r"(acc[4]),
                       [out] "r"(out), [c1] "n"(Step), [c2] "n"(2 * Step), [c3] "n"(3 * Step), [c4] "n"(4 * Step)
                     : "memory", "cc");
}

// One lane (clamped with SSUB8/SEL on its byte, or saturated only).
template <bool kClamp>
QMCU_KERNEL_INLINE void finish1(int32_t acc, const ChannelScale* scale, int8_t* out, uint32_t lo4, uint32_t hi4) {
    QMCU_KERNEL_SCALE_REGS;
    uint32_t t;
    uint32_t h = reinterpret_cast<uintptr_t>(scale);
    if constexpr (kClamp) {
        __asm__ volatile("ldmia %[h], {r8, r9, r10, r11}\n\t" QMCU_KERNEL_SCALE_LANE("%[a]", "%[t]", "%[h]")
                         "ssub8 %[t], %[h], %[lo]\n\t"
                         "sel %[h], %[h], %[lo]\n\t"
                         "ssub8 %[t], %[h], %[hi]\n\t"
                         "sel %[h], %[hi], %[h]\n\t"
                         "strb %[h], [%[out]]"
                         : [t] "=&r"(t), [h] "+&r"(h), QMCU_KERNEL_SCALE_CLOBBERS
                         : [a] "r"(acc), [lo] "r"(lo4), [hi] "r"(hi4), [out] "r"(out)
                         : "memory", "cc");
    } else {
        __asm__ volatile("ldmia %[h], {r8, r9, r10, r11}\n\t" QMCU_KERNEL_SCALE_LANE("%[a]", "%[t]", "%[h]")
                         "strb %[h], [%[out]]"
                         : [t] "=&r"(t), [h] "+&r"(h), QMCU_KERNEL_SCALE_CLOBBERS
                         : [a] "r"(acc), [out] "r"(out)
                         : "memory", "cc");
    }
}
#undef QMCU_KERNEL_SCALE_LANE
#undef QMCU_KERNEL_SCALE_REGS
#undef QMCU_KERNEL_SCALE_CLOBBERS
#endif  // QMCU_KERNELS_DSP_NATIVE

// Requantize T accumulators (1..5) of one channel, clamp them (kClamp: to [qmin, qmax], lo4/hi4 in every byte lane;
// else the layer's clamp is all of int8) and store them Step bytes apart.
template <int T, int32_t Step, bool kClamp>
QMCU_KERNEL_INLINE void finishLanes(const int32_t (&acc)[T], const ChannelScale* scale, int8_t* out, uint32_t lo4,
                                   uint32_t hi4) {
#if QMCU_KERNELS_DSP_NATIVE
    if constexpr (4 * Step <= 4095) {  // STRB immediate offsets
        int first = 0;
        if constexpr (T == 5 && !kClamp) {
            finish5Saturated<Step>(acc, scale, out);
            first = 5;
        } else if constexpr (T >= 4) {
            if constexpr (kClamp) {
                finish4Clamped<Step>(acc, scale, out, lo4, hi4);
            } else {
                finish4Saturated<Step>(acc, scale, out);
            }
            first = 4;
        }
#pragma GCC unroll 4
        for (int t = first; t < T; ++t) {
            finish1<kClamp>(acc[t], scale, out + t * Step, lo4, hi4);
        }
        return;
    }
#endif
    int32_t v[T];
#pragma GCC unroll 5
    for (int t = 0; t < T; ++t) {
        v[t] = kisa::ssat8(scale->scale(acc[t]));
    }
#pragma GCC unroll 2
    for (int t0 = 0; t0 < T; t0 += 4) {
        uint32_t packed = 0;
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            if (t0 + k < T) {
                packed |= (static_cast<uint32_t>(v[t0 + k]) & 0xFFu) << (8 * k);
            }
        }
        packed = kisa::clampBytes(packed, lo4, hi4);
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            if (t0 + k < T) {
                out[(t0 + k) * Step] = static_cast<int8_t>(static_cast<uint8_t>(packed >> (8 * k)));
            }
        }
    }
}
}  // namespace strided
}  // namespace qmcu
