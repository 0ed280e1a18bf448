// Depthwise 2-D convolution on NHWC int8 tensors (groups = Cin, depth multiplier M >= 1, any kernel, stride,
// zero padding): spec conv_reference.depthwise_conv2d in tools/qmcu/quant/conv_reference.py.
//
//   qmcu::depthwiseConv2d<qmcu::DepthwiseShape<H, W, Cin, M, KH, KW, SH, SW, PadT, PadB, PadL, PadR>>(scratch, params, in, out)
//   out[oy][ox][c*M + m] = requant(bias + sum_{ky,kx} (x[oy*SH - PadT + ky][ox*SW - PadL + kx][c] - zp) * w[ky][kx][c*M + m])
//   where a tap outside the input (padding) holds zp, i.e. adds 0.
//
// in: H x W x Cin int8, out: OH x OW x (Cin*M) int8 (batch 1; any alignment; no overlap). scratch:
// Shape::kScratchBytes (conv_scratch::depthwiseBytes: one padded int16 plane), 4-byte aligned.
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
// DSP: per output row, tiles of 4 outputs share their overlapping plane words; requantization with
// RightShiftRequant, SSAT, one four-lane SSUB8/SEL clamp per tile, byte stores (the outputs are Cout apart).
// Scalar: the same plane and pairs, int32 multiply-accumulate, run-time sizes.
#pragma once

#include "common.hpp"

namespace qmcu {

template <int32_t H, int32_t W, int32_t Cin, int32_t M, int32_t KH, int32_t KW, int32_t SH, int32_t SW,
          int32_t PadT, int32_t PadB, int32_t PadL, int32_t PadR>
struct DepthwiseShape {
    static_assert(H > 0 && W > 0 && Cin > 0 && M > 0 && KH > 0 && KW > 0 && SH > 0 && SW > 0,
                  "positive sizes and strides");
    static_assert(PadT >= 0 && PadB >= 0 && PadL >= 0 && PadR >= 0, "padding is not negative");
    static_assert(H + PadT + PadB >= KH && W + PadL + PadR >= KW, "the kernel fits the padded input");
    static constexpr int32_t kH = H, kW = W, kCin = Cin, kM = M, kKH = KH, kKW = KW, kSH = SH, kSW = SW;
    static constexpr int32_t kPadT = PadT, kPadB = PadB, kPadL = PadL, kPadR = PadR;
    static constexpr int32_t kCout = Cin * M;
    static constexpr int32_t kOH = (H + PadT + PadB - KH) / SH + 1;
    static constexpr int32_t kOW = (W + PadL + PadR - KW) / SW + 1;
    static constexpr int32_t kPairs = (KW + 1) / 2;  // int16 pairs per kernel row
    static constexpr int32_t kPlaneRows = H + PadT + PadB;
    static constexpr int32_t kPlaneStride = conv_scratch::depthwisePlaneStride(W, PadL, PadR);  // int16 values
    static constexpr size_t kWeightCount = static_cast<size_t>(kCout) * KH * 2 * kPairs;
    static constexpr size_t kScratchBytes = conv_scratch::depthwiseBytes(H, W, PadT, PadB, PadL, PadR);
    static constexpr size_t kInputBytes = static_cast<size_t>(H) * W * Cin;
    static constexpr size_t kOutputBytes = static_cast<size_t>(kOH) * kOW * kCout;
};

struct DepthwiseParams {
    const int16_t* weights;    // Shape::kWeightCount values (pairs along the kernel rows), 4-byte aligned
    const int32_t* biases;     // Cout folded biases: bias - input_zero_point * sum of the channel's weights
    ChannelRequant requant;    // per output channel
    int32_t input_zero_point;  // the value of a padded tap
};

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
        }
    }
}

// The extra columns past the padded width hold 0 (they only meet zero weights; initialised all the same).
QMCU_KERNEL_INLINE void zeroSlack(const Geometry& g, int16_t* plane, int32_t padded_w) {
    for (int32_t y = 0; y < g.plane_rows; ++y) {
        for (int32_t x = padded_w; x < g.stride; ++x) {
            plane[y * g.stride + x] = 0;
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

template <class Rq>
QMCU_KERNEL_NOINLINE void depthwiseScalar(const Geometry& g, int32_t padded_w, void* scratch,
                                          const DepthwiseParams& p, Rq rq, const int8_t* in, int8_t* out) {
    int16_t* plane = static_cast<int16_t*>(scratch);
    fillPlane(g, plane, p.input_zero_point);
    zeroSlack(g, plane, padded_w);
    const int32_t pairs = (g.kw + 1) / 2;
    const int32_t cout = g.cin * g.m;
    for (int32_t c = 0; c < g.cin; ++c) {
        loadChannel(g, plane, in, c);
        for (int32_t mi = 0; mi < g.m; ++mi) {
            const int32_t o = c * g.m + mi;
            const int16_t* w = p.weights + o * g.kh * 2 * pairs;
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

// T outputs (1..4) of one output row of one channel: plane row r (at the tile's first output), kernel pairs wk.
template <class S, int T>
QMCU_KERNEL_INLINE void tile(const int16_t* r, const int32_t (&wk)[S::kKH][S::kPairs], int32_t bias,
                             const ChannelScale& scale, int8_t* out, uint32_t lo4, uint32_t hi4) {
    int32_t acc[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        acc[t] = bias;
    }
#pragma GCC unroll 16
    for (int32_t ky = 0; ky < S::kKH; ++ky) {
        const int16_t* row = r + ky * S::kPlaneStride;
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
#pragma GCC unroll 16
            for (int32_t q = 0; q < S::kPairs; ++q) {
                acc[t] = kisa::smlad(static_cast<int32_t>(kisa::load32(row + t * S::kSW + 2 * q)), wk[ky][q], acc[t]);
            }
        }
    }
    int32_t v[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        v[t] = kisa::ssat8(scale.scale(acc[t]));
    }
    uint32_t packed = static_cast<uint32_t>(v[0]) & 0xFFu;
#pragma GCC unroll 4
    for (int t = 1; t < T; ++t) {
        packed |= (static_cast<uint32_t>(v[t]) & 0xFFu) << (8 * t);
    }
    packed = kisa::clampBytes(packed, lo4, hi4);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        out[t * S::kCout] = static_cast<int8_t>(static_cast<uint8_t>(packed >> (8 * t)));
    }
}

template <class S>
QMCU_KERNEL_NOINLINE void depthwiseDsp(void* scratch, const DepthwiseParams& p, const int8_t* in, int8_t* out) {
    constexpr Geometry kGeo = geometryOf<S>();
    constexpr int kTile = 4;
    int16_t* plane = static_cast<int16_t*>(scratch);
    fillPlane(kGeo, plane, p.input_zero_point);
    zeroSlack(kGeo, plane, S::kW + S::kPadL + S::kPadR);
    const uint32_t lo4 = kisa::replicate8(p.requant.qmin);
    const uint32_t hi4 = kisa::replicate8(p.requant.qmax);
    const uint32_t* wp = reinterpret_cast<const uint32_t*>(p.weights);
    for (int32_t c = 0; c < S::kCin; ++c) {
        loadChannel(kGeo, plane, in, c);
        for (int32_t mi = 0; mi < S::kM; ++mi) {
            const int32_t o = c * S::kM + mi;
            int32_t wk[S::kKH][S::kPairs];
#pragma GCC unroll 16
            for (int32_t ky = 0; ky < S::kKH; ++ky) {
#pragma GCC unroll 16
                for (int32_t q = 0; q < S::kPairs; ++q) {
                    wk[ky][q] = static_cast<int32_t>(wp[ky * S::kPairs + q]);
                }
            }
            wp += S::kKH * S::kPairs;
            const int32_t bias = p.biases[o];
            const ChannelScale scale = p.requant.scales[o];
            int8_t* o_row = out + o;
            for (int32_t oy = 0; oy < S::kOH; ++oy) {
                const int16_t* r = plane + oy * S::kSH * S::kPlaneStride;
                for (int32_t ox = 0; ox + kTile <= S::kOW; ox += kTile) {
                    tile<S, kTile>(r, wk, bias, scale, o_row, lo4, hi4);
                    r += kTile * S::kSW;
                    o_row += kTile * S::kCout;
                }
                constexpr int kLast = S::kOW % kTile;
                if constexpr (kLast != 0) {
                    tile<S, kLast>(r, wk, bias, scale, o_row, lo4, hi4);
                    o_row += kLast * S::kCout;
                }
            }
        }
    }
}

#endif  // QMCU_KERNELS_DSP

}  // namespace depthwise_kernel

// The entry point (see the top of this file).
template <class Shape>
QMCU_KERNEL_INLINE void depthwiseConv2d(void* scratch, const DepthwiseParams& p, const int8_t* in, int8_t* out) {
    static constexpr depthwise_kernel::Geometry kGeo = depthwise_kernel::geometryOf<Shape>();
    constexpr int32_t kPaddedW = Shape::kW + Shape::kPadL + Shape::kPadR;
    if (p.requant.scales == nullptr) {
        depthwise_kernel::depthwiseScalar(kGeo, kPaddedW, scratch, p, kernel_detail::ExactRequant{p.requant.exact},
                                          in, out);
        return;
    }
#if QMCU_KERNELS_DSP
    depthwise_kernel::depthwiseDsp<Shape>(scratch, p, in, out);
#else
    depthwise_kernel::depthwiseScalar(kGeo, kPaddedW, scratch, p,
                                      kernel_detail::FastRequant{p.requant.scales, p.requant.qmin, p.requant.qmax},
                                      in, out);
#endif
}

}  // namespace qmcu
