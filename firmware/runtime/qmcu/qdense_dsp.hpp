// The DSP variant of QDenseFast (Cortex-M4/M7/M33): SMLAD on the kernel layout of qdense_fast.hpp.
// Include qdense_fast.hpp, not this file.
//
// Per chunk of four inputs, one LDR and two SXTB16 give the sign-extended pairs (x0, x2) and (x1, x3);
// each of the group's (up to four) rows then costs one LDRD of its two weight words and two SMLADs:
// 4 MACs in 3 instructions per row, plus 3 per chunk shared by the group (15 instructions per 16 MACs).
// The chunk loop is unrolled kChunkUnroll times with immediate LDRD offsets, so it has one pointer
// update and one branch per kChunkUnroll chunks. The epilogue scales each accumulator with
// RightShiftRequant (AND, ADDS, ADC, SMLAL, ASR), saturates it to int8 (SSAT), inserts it into one word
// (BFI), clamps the group's lanes at once to [qmin, qmax] (SSUB8 + SEL, twice) and stores the word.
// A layer whose shift RightShiftRequant does not cover runs scalar::forwardExact instead (out of line).
//
// GCC needs some help to emit that: LDRD, PKHBT and SXTB16 with a rotation are single-instruction inline
// asm (GCC splits 64-bit loads into two LDRs on the M4, and does not fold the other two), and two empty asm
// statements keep per-call constants in registers and keep one chunk's loads from being hoisted above the
// previous chunk's MACs (both would otherwise cost spills). Everything else is ACLE intrinsics and C++.
//
// On a core without the instructions (QMCU_DENSE_EMULATE_DSP=1) the same code runs on portable stand-ins
// with the instructions' exact semantics, so host tests cover this code path too.
#pragma once

#include "config.hpp"
#include "qaffine.hpp"
#include "qdense_scalar.hpp"

#if QMCU_DENSE_FAST_DSP_NATIVE
#include <arm_acle.h>
#if defined(__ARM_BIG_ENDIAN)
#error "qdense_dsp.hpp: the kernel layout pairs int16 weights as little-endian words"
#endif
#endif

namespace qmcu {
namespace dense_kernel {

// Full chunks (four inputs) per iteration of the chunk loop (the remainder is unrolled after it).
constexpr size_t kChunkUnroll = 8;

namespace isa {

// v, hidden from the optimiser: keeps a per-call constant in a register where GCC would rather recompute
// it inside every use (e.g. fold "x >> 1" into each ADC and then need an extra instruction per output).
QMCU_DENSE_INLINE int32_t opaque(int32_t v) {
#if QMCU_DENSE_FAST_DSP_NATIVE
    __asm__("" : "+r"(v));
#endif
    return v;
}

// Keeps the compiler from hoisting the next chunk's loads above this chunk's MACs (which would need more
// registers than the core has and spill accumulators).
QMCU_DENSE_INLINE void chunkBarrier() {
#if QMCU_DENSE_FAST_DSP_NATIVE
    __asm__ volatile("" ::: "memory");
#endif
}

struct WordPair {
    uint32_t lo;  // the word at the lower address
    uint32_t hi;
};

QMCU_DENSE_INLINE uint32_t loadWord(const int8_t* p) {
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);  // LDR; unaligned access is allowed on ARMv7E-M and ARMv8-M mainline
    return v;
}

// v's low byte in all four byte lanes (UXTB/LDRB and one MUL by a MOV-encodable constant).
QMCU_DENSE_INLINE uint32_t replicate8(int32_t v) {
    return (static_cast<uint32_t>(v) & 0xFFu) * static_cast<uint32_t>(opaque(0x01010101));
}

// word with byte lane L (1..3) replaced by the low byte of v. The bit-field form is what GCC turns into
// one BFI (AAPCS allocates bit-fields from the least significant bit on little-endian cores).
struct ByteLanes {
    uint32_t b0 : 8, b1 : 8, b2 : 8, b3 : 8;
};
template <size_t L>
QMCU_DENSE_INLINE uint32_t insertLane(uint32_t word, int32_t v) {
    static_assert(L >= 1 && L <= 3, "lane 0 is the word itself");
    ByteLanes lanes;
    __builtin_memcpy(&lanes, &word, sizeof word);
    const uint32_t b = static_cast<uint32_t>(v) & 0xFFu;
    if constexpr (L == 1) {
        lanes.b1 = b;
    } else if constexpr (L == 2) {
        lanes.b2 = b;
    } else {
        lanes.b3 = b;
    }
    __builtin_memcpy(&word, &lanes, sizeof word);
    return word;
}

#if QMCU_DENSE_FAST_DSP_NATIVE

struct EightBytes {
    unsigned char b[8];
};

// The two words at byte offset kOffset from the 4-byte aligned p: one LDRD (GCC splits 64-bit loads into
// two LDRs on the M4). The "m" operand tells the compiler which memory the instruction reads.
template <size_t kOffset, typename T>
QMCU_DENSE_INLINE WordPair loadPair(const T* p) {
    static_assert(kOffset % 4 == 0 && kOffset <= 1020, "LDRD immediate offset");
    uint32_t lo;  // scalars, not struct members: GCC would give a struct output operand a stack slot
    uint32_t hi;
    __asm__("ldrd %0, %1, [%2, %3]"
            : "=r"(lo), "=r"(hi)
            : "r"(p), "n"(kOffset),
              "m"(*reinterpret_cast<const EightBytes*>(reinterpret_cast<const unsigned char*>(p) + kOffset)));
    return WordPair{lo, hi};
}
template <size_t kOffset, typename T>
QMCU_DENSE_INLINE uint32_t loadAligned(const T* p) {
    uint32_t v;
    __builtin_memcpy(&v, __builtin_assume_aligned(reinterpret_cast<const unsigned char*>(p) + kOffset, 4), sizeof v);
    return v;
}

// (lo & 0xFFFF) | (hi << 16): one PKHBT (GCC emits UXTH + ORR for the C expression).
QMCU_DENSE_INLINE int32_t pack16(int32_t lo, int32_t hi) {
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

QMCU_DENSE_INLINE int32_t sxtb16(uint32_t x) { return __sxtb16(static_cast<int32_t>(x)); }
// SXTB16 with its rotate folded in (GCC does not fold a separate ROR into the intrinsic).
QMCU_DENSE_INLINE int32_t sxtb16Ror8(uint32_t x) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
QMCU_DENSE_INLINE int32_t smlad(int32_t a, uint32_t b, int32_t acc) { return __smlad(a, static_cast<int32_t>(b), acc); }
QMCU_DENSE_INLINE int32_t smlabb(int32_t a, uint32_t b, int32_t acc) {
    return __smlabb(a, static_cast<int32_t>(b), acc);
}
QMCU_DENSE_INLINE int32_t ssat8(int32_t v) { return __ssat(v, 8); }

// Per signed byte lane: min(max(v, lo), hi) (lo <= hi in every lane).
QMCU_DENSE_INLINE uint32_t clampBytes(uint32_t v, uint32_t lo, uint32_t hi) {
    (void)__ssub8(static_cast<int32_t>(v), static_cast<int32_t>(lo));  // GE[k] = v[k] >= lo[k]
    v = __sel(v, lo);
    (void)__ssub8(static_cast<int32_t>(v), static_cast<int32_t>(hi));  // GE[k] = v[k] >= hi[k]
    return __sel(hi, v);
}

#else  // portable stand-ins with the instructions' semantics

// Out of line: the host tests compile hundreds of kernel shapes, and inlining the stand-ins everywhere
// makes that slow without testing anything more.
#define QMCU_DENSE_EMULATED inline __attribute__((noinline))

template <size_t kOffset, typename T>
QMCU_DENSE_EMULATED uint32_t loadAligned(const T* p) {
    uint32_t v;
    __builtin_memcpy(&v, reinterpret_cast<const unsigned char*>(p) + kOffset, sizeof v);  // little-endian host
    return v;
}
template <size_t kOffset, typename T>
QMCU_DENSE_EMULATED WordPair loadPair(const T* p) {
    return WordPair{loadAligned<kOffset>(p), loadAligned<kOffset + 4>(p)};
}

QMCU_DENSE_EMULATED int32_t pack16(int32_t lo, int32_t hi) {
    return static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xFFFFu) | (static_cast<uint32_t>(hi) << 16));
}

QMCU_DENSE_EMULATED int32_t lane16(uint32_t x, int k) {
    return static_cast<int16_t>(static_cast<uint16_t>(x >> (16 * k)));
}
QMCU_DENSE_EMULATED int32_t lane8(uint32_t x, int k) { return static_cast<int8_t>(static_cast<uint8_t>(x >> (8 * k))); }

QMCU_DENSE_EMULATED int32_t sxtb16(uint32_t x) { return pack16(lane8(x, 0), lane8(x, 2)); }
QMCU_DENSE_EMULATED int32_t sxtb16Ror8(uint32_t x) { return pack16(lane8(x, 1), lane8(x, 3)); }
QMCU_DENSE_EMULATED int32_t smlad(int32_t a, uint32_t b, int32_t acc) {
    // SMLAD wraps modulo 2^32 (it only sets the Q flag); kernel_layout.py proves no partial sum leaves int32.
    const uint32_t ua = static_cast<uint32_t>(a);
    const int64_t sum = int64_t{acc} + lane16(ua, 0) * lane16(b, 0) + lane16(ua, 1) * lane16(b, 1);
    return static_cast<int32_t>(sum);
}
QMCU_DENSE_EMULATED int32_t smlabb(int32_t a, uint32_t b, int32_t acc) {
    return static_cast<int32_t>(int64_t{acc} + lane16(static_cast<uint32_t>(a), 0) * lane16(b, 0));
}
QMCU_DENSE_EMULATED int32_t ssat8(int32_t v) { return v < -128 ? -128 : (v > 127 ? 127 : v); }
QMCU_DENSE_EMULATED uint32_t clampBytes(uint32_t v, uint32_t lo, uint32_t hi) {
    uint32_t out = 0;
    for (int k = 0; k < 4; ++k) {
        const int32_t x = lane8(v, k);
        const int32_t l = lane8(lo, k);
        const int32_t h = lane8(hi, k);
        out |= (static_cast<uint32_t>(x < l ? l : (x > h ? h : x)) & 0xFFu) << (8 * k);
    }
    return out;
}

#endif

}  // namespace isa

namespace dsp_kernel {

// Loads R consecutive words (from the 4-byte aligned p) into v[0..R-1], two at a time with LDRD.
template <size_t R, typename T, typename U>
QMCU_DENSE_INLINE void loadWords(const T* p, U* v) {
    Unrolled<R / 2>::run([&](auto k) QMCU_DENSE_LAMBDA_INLINE {
        constexpr size_t kK = decltype(k)::value;
        const isa::WordPair pair = isa::loadPair<8 * kK>(p);
        v[2 * kK] = static_cast<U>(pair.lo);
        v[2 * kK + 1] = static_cast<U>(pair.hi);
    });
    if constexpr (R % 2 != 0) {
        v[R - 1] = static_cast<U>(isa::loadAligned<4 * (R - 1)>(p));
    }
}

// Multiply-accumulate one group of R rows; returns the weight pointer advanced past the group.
template <size_t NIn, size_t R>
QMCU_DENSE_INLINE const int16_t* macGroup(const int8_t* in, const int16_t* w, int32_t* acc) {
    constexpr size_t kChunks = dense_layout::fullChunks(NIn);
    constexpr size_t kUnroll = kChunks < kChunkUnroll ? kChunks : kChunkUnroll;
    // Chunk U of an unrolled block starting at (in, w).
    const auto chunk = [&](auto u) QMCU_DENSE_LAMBDA_INLINE {
        constexpr size_t kU = decltype(u)::value;
        const uint32_t x = isa::loadWord(in + 4 * kU);
        const int32_t even = isa::sxtb16(x);     // (in[0], in[2]) of the chunk
        const int32_t odd = isa::sxtb16Ror8(x);  // (in[1], in[3])
        Unrolled<R>::run([&](auto r) QMCU_DENSE_LAMBDA_INLINE {
            constexpr size_t kR = decltype(r)::value;
            const isa::WordPair pair = isa::loadPair<8 * (kU * R + kR)>(w);
            acc[kR] = isa::smlad(even, pair.lo, acc[kR]);
            acc[kR] = isa::smlad(odd, pair.hi, acc[kR]);
        });
        isa::chunkBarrier();
    };
    if constexpr (kUnroll != 0) {
        for (size_t c = 0; c < kChunks / kUnroll; ++c) {
            Unrolled<kUnroll>::run(chunk);
            in += 4 * kUnroll;
            w += 4 * R * kUnroll;
        }
        Unrolled<kChunks % kUnroll>::run(chunk);
        in += 4 * (kChunks % kUnroll);
        w += 4 * R * (kChunks % kUnroll);
    }
    constexpr size_t kTail = dense_layout::tailInputs(NIn);
    if constexpr (kTail == 1 || kTail == 2) {
        // One weight word per row, the rows' words consecutive.
        uint32_t words[R];
        loadWords<R>(w, words);
        const int32_t x = kTail == 1 ? int32_t{in[0]} : isa::pack16(in[0], in[kTail - 1]);
        Unrolled<R>::run([&](auto r) QMCU_DENSE_LAMBDA_INLINE {
            constexpr size_t kR = decltype(r)::value;
            // T=1: x = in[0] sign-extended, its weight word (w, 0): SMLABB. T=2: x = (in[0], in[1]): SMLAD.
            acc[kR] = kTail == 1 ? isa::smlabb(x, words[kR], acc[kR]) : isa::smlad(x, words[kR], acc[kR]);
        });
        w += 2 * R;
    } else if constexpr (kTail == 3) {
        const int32_t x01 = isa::pack16(in[0], in[1]);
        const int32_t x2 = in[2];
        Unrolled<R>::run([&](auto r) QMCU_DENSE_LAMBDA_INLINE {
            constexpr size_t kR = decltype(r)::value;
            const isa::WordPair pair = isa::loadPair<8 * kR>(w);
            acc[kR] = isa::smlad(x01, pair.lo, acc[kR]);
            acc[kR] = isa::smlabb(x2, pair.hi, acc[kR]);
        });
        w += 4 * R;
    }
    return w;
}

// Requantize a group's R accumulators into out[0..R-1]. lo4/hi4: qmin/qmax in all four byte lanes.
template <size_t R>
QMCU_DENSE_INLINE void finish(const int32_t* acc, int8_t* out, RightShiftRequant fast, uint32_t lo4, uint32_t hi4) {
    if constexpr (R == 1) {
        out[0] = static_cast<int8_t>(fast.apply(acc[0]));  // one lane: two compares beat the byte-lane clamp
    } else {
        // clamp(v, qmin, qmax) = clamp(ssat8(v), qmin, qmax) because [qmin, qmax] is inside int8.
        uint32_t packed = static_cast<uint32_t>(isa::ssat8(fast.scale(acc[0])));
        Unrolled<R - 1>::run([&](auto k) QMCU_DENSE_LAMBDA_INLINE {
            constexpr size_t kLane = decltype(k)::value + 1;
            packed = isa::insertLane<kLane>(packed, isa::ssat8(fast.scale(acc[kLane])));
        });
        packed = isa::clampBytes(packed, lo4, hi4);
        if constexpr (R == 4) {
            __builtin_memcpy(out, &packed, 4);
        } else {
            Unrolled<R>::run([&](auto r) QMCU_DENSE_LAMBDA_INLINE {
                constexpr size_t kR = decltype(r)::value;
                out[kR] = static_cast<int8_t>(static_cast<uint8_t>(packed >> (8 * kR)));
            });
        }
    }
}

template <size_t NIn, size_t R>
QMCU_DENSE_INLINE const int16_t* group(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                       RightShiftRequant fast, uint32_t lo4, uint32_t hi4) {
    int32_t acc[R];
    loadWords<R>(bias, acc);
    w = macGroup<NIn, R>(in, w, acc);
    finish<R>(acc, out, fast, lo4, hi4);
    return w;
}

// The only group of a layer: the clamp bounds are replicated after the MACs (fewer live registers during them).
template <size_t NIn, size_t R>
QMCU_DENSE_INLINE void onlyGroup(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                 RightShiftRequant fast, const Requantizer& rq) {
    int32_t acc[R];
    loadWords<R>(bias, acc);
    macGroup<NIn, R>(in, w, acc);
    isa::chunkBarrier();
    const uint32_t lo4 = R > 1 ? isa::replicate8(rq.qmin) : 0u;
    const uint32_t hi4 = R > 1 ? isa::replicate8(rq.qmax) : 0u;
    finish<R>(acc, out, fast, lo4, hi4);
}

template <size_t NIn, size_t NOut>
QMCU_DENSE_INLINE void forward(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                               const Requantizer& rq) {
    if (!RightShiftRequant::covers(rq)) {
        // Shift >= 0 or < -23 (rare): the compact exact kernel, out of line (so the fast path below contains
        // no call, which would cost it registers).
        scalar::forwardExact(in, out, w, bias, rq, NIn, NOut);
        return;
    }
    constexpr size_t kRows = dense_layout::kGroupRows;
    RightShiftRequant fast = RightShiftRequant::from(rq);
    fast.round_hi = isa::opaque(fast.round_hi);
    if constexpr (NOut <= kRows) {
        onlyGroup<NIn, NOut>(in, out, w, bias, fast, rq);
    } else {
        const uint32_t lo4 = isa::replicate8(rq.qmin);
        const uint32_t hi4 = isa::replicate8(rq.qmax);
        for (size_t g = 0; g < NOut / kRows; ++g) {
            w = group<NIn, kRows>(in, out, w, bias, fast, lo4, hi4);
            bias += kRows;
            out += kRows;
        }
        constexpr size_t kLast = NOut % kRows;
        if constexpr (kLast != 0) {
            group<NIn, kLast>(in, out, w, bias, fast, lo4, hi4);
        }
    }
}

// --- per-channel weights (QDenseFastPC): the same MACs, then each row with its own Requantizer ---

template <size_t NIn, size_t R>
QMCU_DENSE_INLINE const int16_t* groupPerChannel(const int8_t* in, int8_t* out, const int16_t* w, const int32_t* bias,
                                                 const Requantizer* rq) {
    int32_t acc[R];
    loadWords<R>(bias, acc);
    w = macGroup<NIn, R>(in, w, acc);
    isa::chunkBarrier();
    Unrolled<R>::run([&](auto r) QMCU_DENSE_LAMBDA_INLINE {
        constexpr size_t kR = decltype(r)::value;
        out[kR] = static_cast<int8_t>(scalar::requantRow(acc[kR], rq[kR]));
    });
    return w;
}

}  // namespace dsp_kernel
}  // namespace dense_kernel
}  // namespace qmcu
