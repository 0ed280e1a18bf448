// Depthwise 2-D convolution on NHWC int8 tensors (groups = Cin, depth multiplier M >= 1, any kernel, stride,
// zero padding): spec conv_reference.depthwise_conv2d in tools/qmcu/quant/conv_reference.py.
//
//   qmcu::depthwiseConv2d<qmcu::DepthwiseShape<H, W, Cin, M, KH, KW, SH, SW, PadT, PadB, PadL, PadR>>(scratch, params, in, out)
//   out[oy][ox][c*M + m] = requant(bias + sum_{ky,kx} (x[oy*SH - PadT + ky][ox*SW - PadL + kx][c] - zp) * w[ky][kx][c*M + m])
//   where a tap outside the input (padding) holds zp, i.e. adds 0.
//
// in: H x W x Cin int8, out: OH x OW x (Cin*M) int8 (batch 1; any alignment). With M = 1, out may be in itself
// (in place): output channel c depends only on input channel c, which is in the plane before any of its outputs
// is written; otherwise they must not overlap. scratch: Shape::kScratchBytes (conv_scratch::depthwiseBytes: one
// padded int16 plane; with int8 weights also depthwise8ChannelBytes * 2 for one unpacked channel), 4-byte aligned.
//
// What the host prepares (tools/qmcu/codegen/conv_layout.py: prepare_depthwise, render_layer):
//   biases[o] = bias[o] - zp * sum_{ky,kx} w[ky][kx][o]          (int32; padding holds zp)
//   weights   = int16 pairs along the kernel rows, per output channel o = c*M + m (Cout = Cin*M):
//               for o: for ky in [0, KH): for p in [0, ceil(KW/2)): w[ky][2p][o], w[ky][2p+1][o] (0 past KW)
//               i.e. Cout * KH * 2*ceil(KW/2) values, 4-byte aligned.
//   requant   = per output channel (common.hpp). params.input_zero_point fills the plane's padding.
//
// The kernel works one input channel at a time: it writes the channel into the scratch plane as int16, with
// the padding around it (zp, written once per call) and one more zero column, so that every output is
//   acc = bias + sum_{ky} sum_p plane[oy*SH + ky][ox*SW + 2p .. +1] . (w[ky][2p], w[ky][2p+1])
// (an SMLAD per pair; an odd kernel width reads one column past the window, times a zero weight). The M
// output channels of the input channel reuse its plane. Accumulation: bias, then pairs in any order (the
// host's bound covers every partial sum, see pointwise.hpp).
// DSP: per output column, tiles of 4 outputs (5 when they divide OH and 4 do not; a last shorter tile) share
// their overlapping plane rows: for a 3-row kernel of up to 4 columns with SH = 1 a hand-scheduled tile loads the
// channel's 6 weight words by one LDM and each plane word once (4 outputs: 12 loads, 24 SMLADs); other shapes
// run the same sums in C++. Requantization per tile (common.hpp strided::): one LDM of the channel's ChannelScale,
// RightShiftRequant and SSAT per output, one four-lane SSUB8/SEL clamp, byte stores (the outputs are OW*Cout
// apart); when the layer's clamp is all of int8 the SSAT is the clamp and each output is stored as computed.
// Scalar: the same plane and pairs, int32 multiply-accumulate, run-time sizes.
#pragma once

#include "common.hpp"

namespace qmcu {

// WeightBits 16: int16 pairs (the layout above); 8: the same pairs as int8 bytes, half the flash (unpacked once
// per output channel into the scratch; see depthwiseInt8Layout below).
template <int32_t H, int32_t W, int32_t Cin, int32_t M, int32_t KH, int32_t KW, int32_t SH, int32_t SW,
          int32_t PadT, int32_t PadB, int32_t PadL, int32_t PadR, int32_t WeightBits = 16>
struct DepthwiseShape {
    static_assert(H > 0 && W > 0 && Cin > 0 && M > 0 && KH > 0 && KW > 0 && SH > 0 && SW > 0,
                  "positive sizes and strides");
    static_assert(PadT >= 0 && PadB >= 0 && PadL >= 0 && PadR >= 0, "padding is not negative");
    static_assert(H + PadT + PadB >= KH && W + PadL + PadR >= KW, "the kernel fits the padded input");
    static_assert(WeightBits == 16 || WeightBits == 8, "int16 or int8 weights");
    static constexpr int32_t kH = H, kW = W, kCin = Cin, kM = M, kKH = KH, kKW = KW, kSH = SH, kSW = SW;
    static constexpr int32_t kWeightBits = WeightBits;
    static constexpr int32_t kPadT = PadT, kPadB = PadB, kPadL = PadL, kPadR = PadR;
    static constexpr int32_t kCout = Cin * M;
    static constexpr int32_t kOH = (H + PadT + PadB - KH) / SH + 1;
    static constexpr int32_t kOW = (W + PadL + PadR - KW) / SW + 1;
    static constexpr int32_t kPairs = (KW + 1) / 2;  // int16 pairs per kernel row
    static constexpr int32_t kPlaneRows = H + PadT + PadB;
    static constexpr int32_t kPlaneStride = conv_scratch::depthwisePlaneStride(W, PadL, PadR);  // int16 values
    static constexpr int32_t kChannelPairs = KH * kPairs;  // int16 pair words per output channel
    static constexpr size_t kWeightCount =
        static_cast<size_t>(kCout) * (WeightBits == 16 ? 2 * kChannelPairs : conv_scratch::depthwise8ChannelBytes(KH, KW));
    static constexpr size_t kScratchBytes = conv_scratch::depthwiseBytes(H, W, PadT, PadB, PadL, PadR) +
                                            (WeightBits == 16 ? 0 : conv_scratch::depthwise8ChannelBytes(KH, KW) * 2);
    static constexpr size_t kInputBytes = static_cast<size_t>(H) * W * Cin;
    static constexpr size_t kOutputBytes = static_cast<size_t>(kOH) * kOW * kCout;
};

template <typename Wt>
struct DepthwiseParamsT {
    const Wt* weights;         // Shape::kWeightCount values (pairs along the kernel rows), 4-byte aligned
    const int32_t* biases;     // Cout folded biases: bias - input_zero_point * sum of the channel's weights
    ChannelRequant requant;    // per output channel
    int32_t input_zero_point;  // the value of a padded tap
};
using DepthwiseParams = DepthwiseParamsT<int16_t>;  // DepthwiseShape<..., 16>
using DepthwiseParams8 = DepthwiseParamsT<int8_t>;  // DepthwiseShape<..., 8>

namespace depthwise_kernel {

struct Geometry {
    int32_t h, w, cin, m, kh, kw, sh, sw, pad_t, pad_l, oh, ow, plane_rows, stride;
};

template <class S>
constexpr Geometry geometryOf() {
    return Geometry{S::kH,  S::kW,  S::kCin, S::kM,  S::kKH, S::kKW, S::kSH, S::kSW,
                    S::kPadT, S::kPadL, S::kOH, S::kOW, S::kPlaneRows, S::kPlaneStride};
}

// The whole plane: zp everywhere in the padded frame, 0 in the extra columns (the interior is overwritten per
// input channel).
QMCU_KERNEL_INLINE void fillPlane(const Geometry& g, int16_t* plane, int32_t zp) {
    for (int32_t y = 0; y < g.plane_rows; ++y) {
        int16_t* row = plane + y * g.stride;
        for (int32_t x = 0; x < g.stride; ++x) {
            row[x] = static_cast<int16_t>(zp);
            kernel_detail::notALibraryCall();
        }
    }
}

// The extra columns past the padded width hold 0 (they only meet zero weights; initialised all the same).
QMCU_KERNEL_INLINE void zeroSlack(const Geometry& g, int16_t* plane, int32_t padded_w) {
    for (int32_t y = 0; y < g.plane_rows; ++y) {
        for (int32_t x = padded_w; x < g.stride; ++x) {
            plane[y * g.stride + x] = 0;
            kernel_detail::notALibraryCall();
        }
    }
}

// Input channel c into the plane's interior.
QMCU_KERNEL_INLINE void loadChannel(const Geometry& g, int16_t* plane, const int8_t* in, int32_t c) {
    const int8_t* src = in + c;
    for (int32_t y = 0; y < g.h; ++y) {
        int16_t* row = plane + (y + g.pad_t) * g.stride + g.pad_l;
        for (int32_t x = 0; x < g.w; ++x) {
            row[x] = *src;
            src += g.cin;
        }
    }
}

// depthwiseInt8Layout: with int8 weights, output channel o holds its pair words as bytes, two pairs A, B per
// 4 bytes in the order A0, B0, A1, B1 (a zero pair completes an odd count), so that SXTB16 of the word gives A
// and SXTB16 ROR 8 gives B: depthwise8ChannelBytes(KH, KW) bytes per channel.
//
// The int16 values of output channel o's pairs (2 * pairs per channel): in place for int16 weights; unpacked into
// `unpack` (2 * pairs rounded up to 4 values) for int8 weights.
QMCU_KERNEL_INLINE const int16_t* channelPairs(const int16_t* w, int32_t o, int32_t pairs, int16_t*) {
    return w + o * 2 * pairs;
}
QMCU_KERNEL_INLINE const int16_t* channelPairs(const int8_t* w, int32_t o, int32_t pairs, int16_t* unpack) {
    const int32_t groups = (pairs + 1) / 2;
    const int8_t* b = w + o * 4 * groups;
    for (int32_t g = 0; g < groups; ++g, b += 4) {
        unpack[4 * g] = b[0];
        unpack[4 * g + 1] = b[2];
        unpack[4 * g + 2] = b[1];
        unpack[4 * g + 3] = b[3];
    }
    return unpack;
}

template <class Rq, typename Wt>
QMCU_KERNEL_NOINLINE void depthwiseScalar(const Geometry& g, int32_t padded_w, void* scratch,
                                          const DepthwiseParamsT<Wt>& p, Rq rq, const int8_t* in, int8_t* out) {
    int16_t* plane = static_cast<int16_t*>(scratch);
    int16_t* unpack = plane + g.plane_rows * g.stride;  // int8 weights: the channel's pairs
    fillPlane(g, plane, p.input_zero_point);
    zeroSlack(g, plane, padded_w);
    const int32_t pairs = (g.kw + 1) / 2;
    const int32_t cout = g.cin * g.m;
    for (int32_t c = 0; c < g.cin; ++c) {
        loadChannel(g, plane, in, c);
        for (int32_t mi = 0; mi < g.m; ++mi) {
            const int32_t o = c * g.m + mi;
            const int16_t* w = channelPairs(p.weights, o, g.kh * pairs, unpack);
            for (int32_t oy = 0; oy < g.oh; ++oy) {
                for (int32_t ox = 0; ox < g.ow; ++ox) {
                    int32_t acc = p.biases[o];
                    for (int32_t ky = 0; ky < g.kh; ++ky) {
                        const int16_t* r = plane + (oy * g.sh + ky) * g.stride + ox * g.sw;
                        const int16_t* wr = w + ky * 2 * pairs;
                        for (int32_t k = 0; k < 2 * pairs; ++k) {
                            acc += r[k] * wr[k];
                        }
                    }
                    out[(oy * g.ow + ox) * cout + o] = static_cast<int8_t>(rq(acc, o));
                }
            }
        }
    }
}

#if QMCU_KERNELS_DSP

// Input channel c into the plane's interior (compile-time sizes: fully unrolled rows, LDRSB + STRH per value).
template <class S>
QMCU_KERNEL_INLINE void loadChannelDsp(int16_t* plane, const int8_t* in) {
    int16_t* row = plane + S::kPadT * S::kPlaneStride + S::kPadL;
    for (int32_t y = 0; y < S::kH; ++y) {
#pragma GCC unroll 32
        for (int32_t x = 0; x < S::kW; ++x) {
            row[x] = in[x * S::kCin];
        }
        row += S::kPlaneStride;
        in += S::kW * S::kCin;
    }
}

#if QMCU_KERNELS_DSP_NATIVE


// T (4 or 5) outputs down a column for a 3-row kernel of two pairs per row (KW 3 or 4) and SH = 1, scheduled by
// hand: one LDM of the channel's six weight words (r4, r5, r8-r11: rows 0, 1, 2 x pairs 0, 1; mostly high registers,
// so that the accumulators, plane pointer, bias and loaded word have six low ones: see common.hpp's strided:: note),
// then plane rows j = 0..T+1, each loaded as two words (window columns 0-1 and 2-3) and multiplied into the outputs
// t that use it (output t uses rows t..t+2, with kernel row j - t); each accumulator starts at the bias.
template <int32_t Stride>
QMCU_KERNEL_INLINE void macTile3x2(const int16_t* r, const uint32_t* wk, int32_t bias, int32_t (&acc)[4]) {
    register uint32_t w00 __asm__("r4");
    register uint32_t w01 __asm__("r5");
    register uint32_t w10 __asm__("r8");
    register uint32_t w11 __asm__("r9");
    register uint32_t w20 __asm__("r10");
    register uint32_t w21 __asm__("r11");
    uint32_t v = reinterpret_cast<uintptr_t>(wk);  // the weight pointer, then each loaded plane word
    constexpr int32_t kRow = 2 * Stride;           // bytes per plane row
    __asm__("ldmia %[v], {r4, r5, r8, r9, r10, r11}\n\t"
            // plane row 0: output 0 (ky 0)
            "ldr %[v], [%[r]]\n\t"
            "smlad %[a0], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], #4]\n\t"
            "smlad %[a0], %[v], r5, %[a0]\n\t"
            // plane row 1: output 0 (ky 1), output 1 (ky 0)
            "ldr %[v], [%[r], %[o1]]\n\t"
            "smlad %[a0], %[v], r8, %[a0]\n\t"
            "smlad %[a1], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o1b]]\n\t"
            "smlad %[a0], %[v], r9, %[a0]\n\t"
            "smlad %[a1], %[v], r5, %[a1]\n\t"
            // plane row 2: output 0 (ky 2), output 1 (ky 1), output 2 (ky 0)
            "ldr %[v], [%[r], %[o2]]\n\t"
            "smlad %[a0], %[v], r10, %[a0]\n\t"
            "smlad %[a1], %[v], r8, %[a1]\n\t"
            "smlad %[a2], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o2b]]\n\t"
            "smlad %[a0], %[v], r11, %[a0]\n\t"
            "smlad %[a1], %[v], r9, %[a1]\n\t"
            "smlad %[a2], %[v], r5, %[a2]\n\t"
            // plane row 3: output 1 (ky 2), output 2 (ky 1), output 3 (ky 0)
            "ldr %[v], [%[r], %[o3]]\n\t"
            "smlad %[a1], %[v], r10, %[a1]\n\t"
            "smlad %[a2], %[v], r8, %[a2]\n\t"
            "smlad %[a3], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o3b]]\n\t"
            "smlad %[a1], %[v], r11, %[a1]\n\t"
            "smlad %[a2], %[v], r9, %[a2]\n\t"
            "smlad %[a3], %[v], r5, %[a3]\n\t"
            // plane row 4: output 2 (ky 2), output 3 (ky 1)
            "ldr %[v], [%[r], %[o4]]\n\t"
            "smlad %[a2], %[v], r10, %[a2]\n\t"
            "smlad %[a3], %[v], r8, %[a3]\n\t"
            "ldr %[v], [%[r], %[o4b]]\n\t"
            "smlad %[a2], %[v], r11, %[a2]\n\t"
            "smlad %[a3], %[v], r9, %[a3]\n\t"
            // plane row 5: output 3 (ky 2)
            "ldr %[v], [%[r], %[o5]]\n\t"
            "smlad %[a3], %[v], r10, %[a3]\n\t"
            "ldr %[v], [%[r], %[o5b]]\n\t"
            "smlad %[a3], %[v], r11, %[a3]"
            : [a0] "=&r"(acc[0]), [a1] "=&r"(acc[1]), [a2] "=&r"(acc[2]), [a3] "=&r"(acc[3]), [v] "+&r"(v), "=&r"(w00), "=&r"(w01), "=&r"(w10), "=&r"(w11), "=&r"(w20),
              "=&r"(w21)
            : [r] "r"(r), [b] "r"(bias), [o1] "n"(1 * kRow), [o1b] "n"(1 * kRow + 4), [o2] "n"(2 * kRow), [o2b] "n"(2 * kRow + 4), [o3] "n"(3 * kRow), [o3b] "n"(3 * kRow + 4), [o4] "n"(4 * kRow), [o4b] "n"(4 * kRow + 4), [o5] "n"(5 * kRow), [o5b] "n"(5 * kRow + 4)
            : "memory");
}

template <int32_t Stride>
QMCU_KERNEL_INLINE void macTile3x2(const int16_t* r, const uint32_t* wk, int32_t bias, int32_t (&acc)[5]) {
    register uint32_t w00 __asm__("r4");
    register uint32_t w01 __asm__("r5");
    register uint32_t w10 __asm__("r8");
    register uint32_t w11 __asm__("r9");
    register uint32_t w20 __asm__("r10");
    register uint32_t w21 __asm__("r11");
    uint32_t v = reinterpret_cast<uintptr_t>(wk);  // the weight pointer, then each loaded plane word
    constexpr int32_t kRow = 2 * Stride;           // bytes per plane row
    __asm__("ldmia %[v], {r4, r5, r8, r9, r10, r11}\n\t"
            // plane row 0: output 0 (ky 0)
            "ldr %[v], [%[r]]\n\t"
            "smlad %[a0], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], #4]\n\t"
            "smlad %[a0], %[v], r5, %[a0]\n\t"
            // plane row 1: output 0 (ky 1), output 1 (ky 0)
            "ldr %[v], [%[r], %[o1]]\n\t"
            "smlad %[a0], %[v], r8, %[a0]\n\t"
            "smlad %[a1], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o1b]]\n\t"
            "smlad %[a0], %[v], r9, %[a0]\n\t"
            "smlad %[a1], %[v], r5, %[a1]\n\t"
            // plane row 2: output 0 (ky 2), output 1 (ky 1), output 2 (ky 0)
            "ldr %[v], [%[r], %[o2]]\n\t"
            "smlad %[a0], %[v], r10, %[a0]\n\t"
            "smlad %[a1], %[v], r8, %[a1]\n\t"
            "smlad %[a2], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o2b]]\n\t"
            "smlad %[a0], %[v], r11, %[a0]\n\t"
            "smlad %[a1], %[v], r9, %[a1]\n\t"
            "smlad %[a2], %[v], r5, %[a2]\n\t"
            // plane row 3: output 1 (ky 2), output 2 (ky 1), output 3 (ky 0)
            "ldr %[v], [%[r], %[o3]]\n\t"
            "smlad %[a1], %[v], r10, %[a1]\n\t"
            "smlad %[a2], %[v], r8, %[a2]\n\t"
            "smlad %[a3], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o3b]]\n\t"
            "smlad %[a1], %[v], r11, %[a1]\n\t"
            "smlad %[a2], %[v], r9, %[a2]\n\t"
            "smlad %[a3], %[v], r5, %[a3]\n\t"
            // plane row 4: output 2 (ky 2), output 3 (ky 1), output 4 (ky 0)
            "ldr %[v], [%[r], %[o4]]\n\t"
            "smlad %[a2], %[v], r10, %[a2]\n\t"
            "smlad %[a3], %[v], r8, %[a3]\n\t"
            "smlad %[a4], %[v], r4, %[b]\n\t"
            "ldr %[v], [%[r], %[o4b]]\n\t"
            "smlad %[a2], %[v], r11, %[a2]\n\t"
            "smlad %[a3], %[v], r9, %[a3]\n\t"
            "smlad %[a4], %[v], r5, %[a4]\n\t"
            // plane row 5: output 3 (ky 2), output 4 (ky 1)
            "ldr %[v], [%[r], %[o5]]\n\t"
            "smlad %[a3], %[v], r10, %[a3]\n\t"
            "smlad %[a4], %[v], r8, %[a4]\n\t"
            "ldr %[v], [%[r], %[o5b]]\n\t"
            "smlad %[a3], %[v], r11, %[a3]\n\t"
            "smlad %[a4], %[v], r9, %[a4]\n\t"
            // plane row 6: output 4 (ky 2)
            "ldr %[v], [%[r], %[o6]]\n\t"
            "smlad %[a4], %[v], r10, %[a4]\n\t"
            "ldr %[v], [%[r], %[o6b]]\n\t"
            "smlad %[a4], %[v], r11, %[a4]"
            : [a0] "=&r"(acc[0]), [a1] "=&r"(acc[1]), [a2] "=&r"(acc[2]), [a3] "=&r"(acc[3]), [a4] "=&r"(acc[4]), [v] "+&r"(v), "=&r"(w00), "=&r"(w01), "=&r"(w10), "=&r"(w11), "=&r"(w20),
              "=&r"(w21)
            : [r] "r"(r), [b] "r"(bias), [o1] "n"(1 * kRow), [o1b] "n"(1 * kRow + 4), [o2] "n"(2 * kRow), [o2b] "n"(2 * kRow + 4), [o3] "n"(3 * kRow), [o3b] "n"(3 * kRow + 4), [o4] "n"(4 * kRow), [o4b] "n"(4 * kRow + 4), [o5] "n"(5 * kRow), [o5b] "n"(5 * kRow + 4), [o6] "n"(6 * kRow), [o6b] "n"(6 * kRow + 4)
            : "memory");
}

#endif  // QMCU_KERNELS_DSP_NATIVE

// T outputs (1..5) down one output column of one channel: plane window r (at the tile's first output), the
// channel's kernel pairs wk (KH * kPairs words). With SH < KH the outputs share plane rows, and each pair
// word is loaded once for all of them.
template <class S, int T, bool kClamp>
QMCU_KERNEL_INLINE void tile(const int16_t* r, const uint32_t* wk, int32_t bias, const ChannelScale* scale,
                             int8_t* out, uint32_t lo4, uint32_t hi4) {
    int32_t acc[T];
#if QMCU_KERNELS_DSP_NATIVE
    if constexpr ((T == 4 || T == 5) && S::kKH == 3 && S::kPairs == 2 && S::kSH == 1 &&
                  2 * (T + 1) * S::kPlaneStride + 4 <= 4095) {
        macTile3x2<S::kPlaneStride>(r, wk, bias, acc);
        strided::finishLanes<T, S::kOW * S::kCout, kClamp>(acc, scale, out, lo4, hi4);
        return;
    }
#endif
#pragma GCC unroll 5
    for (int t = 0; t < T; ++t) {
        acc[t] = bias;
    }
#pragma GCC unroll 16
    for (int32_t ky = 0; ky < S::kKH; ++ky) {
#pragma GCC unroll 16
        for (int32_t q = 0; q < S::kPairs; ++q) {
            const int32_t w = static_cast<int32_t>(wk[ky * S::kPairs + q]);
#pragma GCC unroll 5
            for (int t = 0; t < T; ++t) {
                const int16_t* at = r + (t * S::kSH + ky) * S::kPlaneStride + 2 * q;
                acc[t] = kisa::smlad(static_cast<int32_t>(kisa::load32(at)), w, acc[t]);
            }
        }
    }
    strided::finishLanes<T, S::kOW * S::kCout, kClamp>(acc, scale, out, lo4, hi4);
}

// The pair words of output channel o (S::kChannelPairs): in place, or unpacked by SXTB16 into `unpack`.
template <class S>
QMCU_KERNEL_INLINE const uint32_t* channelWords(const int16_t* w, int32_t o, uint32_t*) {
    return reinterpret_cast<const uint32_t*>(w) + o * S::kChannelPairs;
}
template <class S>
QMCU_KERNEL_INLINE const uint32_t* channelWords(const int8_t* w, int32_t o, uint32_t* unpack) {
    constexpr int32_t kGroups = (S::kChannelPairs + 1) / 2;
    const int8_t* b = w + o * 4 * kGroups;
#pragma GCC unroll 8
    for (int32_t g = 0; g < kGroups; ++g) {
        const uint32_t word = kisa::load32(b + 4 * g);
        unpack[2 * g] = static_cast<uint32_t>(kisa::sxtb16(word));
        unpack[2 * g + 1] = static_cast<uint32_t>(kisa::sxtb16Ror8(word));
    }
    return unpack;
}

// Tiles of 5 when they divide the output height and 4 do not, else 4 (and a last, shorter tile).
template <class S>
constexpr int kColumnTile = (S::kOH % 5 == 0 && S::kOH % 4 != 0) ? 5 : 4;

template <class S, bool kClamp, typename Wt>
QMCU_KERNEL_INLINE void depthwiseChannels(int16_t* plane, const DepthwiseParamsT<Wt>& p, const int8_t* in,
                                          int8_t* out) {
    constexpr int kTile = kColumnTile<S>;
    const uint32_t lo4 = kisa::replicate8(p.requant.qmin);
    const uint32_t hi4 = kisa::replicate8(p.requant.qmax);
    uint32_t* unpack = reinterpret_cast<uint32_t*>(plane + S::kPlaneRows * S::kPlaneStride);
    const int32_t* bias = p.biases;
    const ChannelScale* scale = p.requant.scales;
    for (int32_t c = 0; c < S::kCin; ++c) {
        loadChannelDsp<S>(plane, in + c);
        for (int32_t mi = 0; mi < S::kM; ++mi) {
            const int32_t b = *bias++;
            const uint32_t* wk = channelWords<S>(p.weights, c * S::kM + mi, unpack);
            int8_t* o_col = out + (c * S::kM + mi);
            for (int32_t ox = 0; ox < S::kOW; ++ox) {
                const int16_t* r = plane + ox * S::kSW;
                int8_t* o = o_col;
                for (int32_t oy = 0; oy + kTile <= S::kOH; oy += kTile) {
                    tile<S, kTile, kClamp>(r, wk, b, scale, o, lo4, hi4);
                    r += kTile * S::kSH * S::kPlaneStride;
                    o += kTile * S::kOW * S::kCout;
                }
                constexpr int kLast = S::kOH % kTile;
                if constexpr (kLast != 0) {
                    tile<S, kLast, kClamp>(r, wk, b, scale, o, lo4, hi4);
                }
                o_col += S::kCout;
            }
            ++scale;
        }
    }
}

template <class S, typename Wt>
QMCU_KERNEL_NOINLINE void depthwiseDsp(void* scratch, const DepthwiseParamsT<Wt>& p, const int8_t* in, int8_t* out) {
    constexpr Geometry kGeo = geometryOf<S>();
    int16_t* plane = static_cast<int16_t*>(scratch);
    fillPlane(kGeo, plane, p.input_zero_point);
    zeroSlack(kGeo, plane, S::kW + S::kPadL + S::kPadR);
    if (p.requant.qmin == -128 && p.requant.qmax == 127) {
        depthwiseChannels<S, false>(plane, p, in, out);  // SSAT is the whole clamp
    } else {
        depthwiseChannels<S, true>(plane, p, in, out);
    }
}

#endif  // QMCU_KERNELS_DSP

}  // namespace depthwise_kernel

// The entry point (see the top of this file): DepthwiseParams (int16 weights) or DepthwiseParams8 (int8).
template <class Shape, typename Wt>
QMCU_KERNEL_INLINE void depthwiseConv2d(void* scratch, const DepthwiseParamsT<Wt>& p, const int8_t* in, int8_t* out) {
    static_assert(Shape::kWeightBits == 8 * static_cast<int32_t>(sizeof(Wt)), "DepthwiseShape<..., 8> takes int8 weights");
    static constexpr depthwise_kernel::Geometry kGeo = depthwise_kernel::geometryOf<Shape>();
    constexpr int32_t kPaddedW = Shape::kW + Shape::kPadL + Shape::kPadR;
    if (kernel_detail::kExactRequantCompiled && p.requant.scales == nullptr) {
        depthwise_kernel::depthwiseScalar(kGeo, kPaddedW, scratch, p, kernel_detail::ExactRequant{p.requant.exact},
                                          in, out);
        return;
    }
#if QMCU_KERNELS_DSP
    depthwise_kernel::depthwiseDsp<Shape, Wt>(scratch, p, in, out);
#else
    depthwise_kernel::depthwiseScalar(kGeo, kPaddedW, scratch, p,
                                      kernel_detail::FastRequant{p.requant.scales, p.requant.qmin, p.requant.qmax},
                                      in, out);
#endif
}

}  // namespace qmcu
