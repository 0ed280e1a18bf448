// General 2-D convolution on NHWC int8 tensors (any kernel, stride, zero padding; dilation 1, groups 1):
// spec conv_reference.conv2d in tools/qmcu/quant/conv_reference.py. A Conv1d is H = 1, KH = 1.
//
//   qmcu::conv2d<qmcu::ConvShape<H, W, Cin, Cout, KH, KW, SH, SW, PadT, PadB, PadL, PadR>>(scratch, params, in, out)
//   out[oy][ox][o] = requant_o(bias[o] + sum_{ky,kx,ci} (x[oy*SH - PadT + ky][ox*SW - PadL + kx][ci] - zp) * w[o][ky][kx][ci])
//   where a tap outside the input (padding) holds zp, i.e. adds 0.
//
// in: H x W x Cin int8, out: OH x OW x Cout int8 (batch 1; any alignment; they must not overlap), with
// OH = (H + PadT + PadB - KH) / SH + 1 and OW = (W + PadL + PadR - KW) / SW + 1. scratch: Shape::kScratchBytes
// (conv_scratch::conv2dBytes), 4-byte aligned, in the caller's arena.
//
// What the host prepares (tools/qmcu/codegen/conv_layout.py: prepare_conv2d, render_layer):
//   biases[o] = bias[o] - zp * sum_{ky,kx,ci} w[o][ky][kx][ci]   (int32; padding holds zp, so the kernel
//               multiplies raw int8 values everywhere: the same integer as the reference's accumulator)
//   weights   = int16, pointwise.hpp's GEMV layout with depth K = KH*KW*Cin, input k = (ky*KW + kx)*Cin + ci
//               (the im2col column order), Cout rows.
//   requant   = per output channel (common.hpp).
//   params.input_zero_point fills the padded taps of the column.
//
// Per output pixel the kernel gathers the im2col column (K int8 values, zp for padded taps, zero up to the
// next multiple of 8) into the scratch, widens it (SXTB16 order) and runs pointwise.hpp's GEMV over it: the
// same accumulation as pointwise (bias first, then any order; the host's bound covers every partial sum).
// DSP, when a kernel row is a multiple of 4 bytes (KW*Cin % 4 == 0): the column is widened straight from the
// input rows (no byte gather), the same values in the same order.
// Variants as in pointwise.hpp (DSP: LDM/SMLAD GEMV; scalar: run-time sizes, one function for every shape).
#pragma once

#include "common.hpp"
#include "pointwise.hpp"

namespace qmcu {

template <int32_t H, int32_t W, int32_t Cin, int32_t Cout, int32_t KH, int32_t KW, int32_t SH, int32_t SW,
          int32_t PadT, int32_t PadB, int32_t PadL, int32_t PadR>
struct ConvShape {
    static_assert(H > 0 && W > 0 && Cin > 0 && Cout > 0 && KH > 0 && KW > 0 && SH > 0 && SW > 0,
                  "positive sizes and strides");
    static_assert(PadT >= 0 && PadB >= 0 && PadL >= 0 && PadR >= 0, "padding is not negative");
    static_assert(H + PadT + PadB >= KH && W + PadL + PadR >= KW, "the kernel fits the padded input");
    static constexpr int32_t kH = H, kW = W, kCin = Cin, kCout = Cout, kKH = KH, kKW = KW, kSH = SH, kSW = SW;
    static constexpr int32_t kPadT = PadT, kPadB = PadB, kPadL = PadL, kPadR = PadR;
    static constexpr int32_t kOH = (H + PadT + PadB - KH) / SH + 1;
    static constexpr int32_t kOW = (W + PadL + PadR - KW) / SW + 1;
    static constexpr int32_t kDepth = KH * KW * Cin;  // im2col column
    static constexpr int32_t kPaddedDepth = gemv_layout::paddedDepth(kDepth);
    static constexpr size_t kWeightCount = gemv_layout::weightCount(kDepth, Cout);
    static constexpr size_t kScratchBytes = conv_scratch::conv2dBytes(KH, KW, Cin);
    static constexpr size_t kInputBytes = static_cast<size_t>(H) * W * Cin;
    static constexpr size_t kOutputBytes = static_cast<size_t>(kOH) * kOW * Cout;
};

struct ConvParams {
    const int16_t* weights;    // Shape::kWeightCount values in the GEMV layout, 4-byte aligned
    const int32_t* biases;     // Cout folded biases: bias - input_zero_point * sum of the channel's weights
    ChannelRequant requant;    // per output channel
    int32_t input_zero_point;  // the value of a padded tap
};

namespace conv_kernel {

// The runtime geometry (the scalar variant and the gather take it as values: one function for every shape).
struct Geometry {
    int32_t h, w, cin, cout, kh, kw, sh, sw, pad_t, pad_l, oh, ow;
};

template <class Shape>
constexpr Geometry geometryOf() {
    return Geometry{Shape::kH,  Shape::kW,  Shape::kCin,  Shape::kCout, Shape::kKH, Shape::kKW,
                    Shape::kSH, Shape::kSW, Shape::kPadT, Shape::kPadL, Shape::kOH, Shape::kOW};
}

QMCU_KERNEL_INLINE void fillBytes(int8_t* p, int32_t n, int8_t v) {
    for (int32_t i = 0; i < n; ++i) {
        p[i] = v;
        kernel_detail::notALibraryCall();
    }
}
QMCU_KERNEL_INLINE void copyBytes(int8_t* d, const int8_t* s, int32_t n) {
    for (int32_t i = 0; i < n; ++i) {
        d[i] = s[i];
        kernel_detail::notALibraryCall();
    }
}

// The im2col column of output pixel (oy, ox): K = kh*kw*cin values in (ky, kx, ci) order, zp at padded taps,
// then zeros up to the next multiple of 8.
QMCU_KERNEL_INLINE void gatherColumn(const Geometry& g, const int8_t* in, int32_t oy, int32_t ox, int8_t zp,
                                     int8_t* col) {
    const int32_t row_len = g.kw * g.cin;
    const int32_t x0 = ox * g.sw - g.pad_l;  // input column of kx = 0
    int32_t kx_lo = -x0;
    kx_lo = kx_lo < 0 ? 0 : (kx_lo > g.kw ? g.kw : kx_lo);
    int32_t kx_hi = g.w - x0;
    kx_hi = kx_hi > g.kw ? g.kw : (kx_hi < kx_lo ? kx_lo : kx_hi);
    for (int32_t ky = 0; ky < g.kh; ++ky) {
        const int32_t iy = oy * g.sh - g.pad_t + ky;
        if (iy < 0 || iy >= g.h) {
            fillBytes(col, row_len, zp);
        } else {
            fillBytes(col, kx_lo * g.cin, zp);
            copyBytes(col + kx_lo * g.cin, in + (iy * g.w + x0 + kx_lo) * g.cin, (kx_hi - kx_lo) * g.cin);
            fillBytes(col + kx_hi * g.cin, (g.kw - kx_hi) * g.cin, zp);
        }
        col += row_len;
    }
    fillBytes(col, gemv_layout::paddedDepth(g.kh * row_len) - g.kh * row_len, 0);
}

template <class Rq>
QMCU_KERNEL_NOINLINE void conv2dScalar(const Geometry& g, void* scratch, const ConvParams& p, Rq rq, const int8_t* in,
                                       int8_t* out) {
    const int32_t depth = g.kh * g.kw * g.cin;
    const int32_t kp = gemv_layout::paddedDepth(depth);
    int16_t* x16 = static_cast<int16_t*>(scratch);
    int8_t* col = reinterpret_cast<int8_t*>(x16 + kp);
    const int8_t zp = static_cast<int8_t>(p.input_zero_point);
    for (int32_t oy = 0; oy < g.oh; ++oy) {
        for (int32_t ox = 0; ox < g.ow; ++ox) {
            gatherColumn(g, in, oy, ox, zp, col);
            gemv::widenScalar(col, depth, x16);
            gemv::rowsScalar(x16, kp, p.weights, p.biases, rq, out, g.cout);
            out += g.cout;
        }
    }
}

#if QMCU_KERNELS_DSP
// The widened column of output pixel (oy, ox) straight from the input, for kernel rows of KW*Cin bytes, a multiple
// of 4: each row's bytes start at a multiple of 4 in the column, so every input word widens (SXTB16) to its own two
// column words. A kernel row outside the input is zp everywhere; a row clipped by the left or right padding is
// gathered into tmp first. The column is then zero padded to a multiple of 8 values.
template <class S>
QMCU_KERNEL_INLINE void widenColumnRows(const int8_t* in, int32_t oy, int32_t ox, int8_t zp, uint32_t zp2,
                                        uint32_t* x16, int8_t* tmp) {
    constexpr int32_t kRow = S::kKW * S::kCin;
    constexpr int32_t kGroups = kRow / 4;  // input words per kernel row
    const int32_t x0 = ox * S::kSW - S::kPadL;
    const bool inside = x0 >= 0 && x0 + S::kKW <= S::kW;
    int32_t iy = oy * S::kSH - S::kPadT;
    for (int32_t ky = 0; ky < S::kKH; ++ky, ++iy) {
        if (iy < 0 || iy >= S::kH) {
#pragma GCC unroll 8
            for (int32_t g = 0; g < 2 * kGroups; ++g) {
                x16[g] = zp2;
            }
        } else {
            const int8_t* src = in + (iy * S::kW + x0) * S::kCin;
            if (!inside) {
                for (int32_t kx = 0; kx < S::kKW; ++kx) {
                    const bool real = x0 + kx >= 0 && x0 + kx < S::kW;
                    for (int32_t ci = 0; ci < S::kCin; ++ci) {
                        tmp[kx * S::kCin + ci] = real ? src[kx * S::kCin + ci] : zp;
                    }
                }
                src = tmp;
            }
#pragma GCC unroll 8
            for (int32_t g = 0; g < kGroups; ++g) {
                const uint32_t w = kisa::load32(src + 4 * g);
                x16[2 * g] = static_cast<uint32_t>(kisa::sxtb16(w));
                x16[2 * g + 1] = static_cast<uint32_t>(kisa::sxtb16Ror8(w));
            }
        }
        x16 += 2 * kGroups;
    }
    if constexpr (S::kDepth % 8 != 0) {  // one last group of 4 zeros
        x16[0] = 0;
        x16[1] = 0;
    }
}

template <class Shape>
QMCU_KERNEL_NOINLINE void conv2dDsp(void* scratch, const ConvParams& p, const int8_t* in, int8_t* out) {
    constexpr Geometry kGeo = geometryOf<Shape>();
    constexpr int32_t kp = Shape::kPaddedDepth;
    uint32_t* x16 = static_cast<uint32_t*>(scratch);
    int8_t* col = reinterpret_cast<int8_t*>(x16 + kp / 2);
    const int8_t zp = static_cast<int8_t>(p.input_zero_point);
    const uint32_t zp2 = static_cast<uint32_t>(kisa::sxtb16(kisa::replicate8(zp)));
    const uint32_t lo4 = kisa::replicate8(p.requant.qmin);
    const uint32_t hi4 = kisa::replicate8(p.requant.qmax);
    for (int32_t oy = 0; oy < Shape::kOH; ++oy) {
        for (int32_t ox = 0; ox < Shape::kOW; ++ox) {
            if constexpr ((Shape::kKW * Shape::kCin) % 4 == 0) {
                widenColumnRows<Shape>(in, oy, ox, zp, zp2, x16, col);
            } else {
                gatherColumn(kGeo, in, oy, ox, zp, col);
                gemv::widen<kp>(col, x16);
            }
            gemv::rowsDsp<kp, Shape::kCout>(x16, p.weights, p.biases, p.requant.scales, out, lo4, hi4);
            out += Shape::kCout;
        }
    }
}
#endif

}  // namespace conv_kernel

// The entry point (see the top of this file).
template <class Shape>
QMCU_KERNEL_INLINE void conv2d(void* scratch, const ConvParams& p, const int8_t* in, int8_t* out) {
    static constexpr conv_kernel::Geometry kGeo = conv_kernel::geometryOf<Shape>();
    if (kernel_detail::kExactRequantCompiled && p.requant.scales == nullptr) {
        conv_kernel::conv2dScalar(kGeo, scratch, p, kernel_detail::ExactRequant{p.requant.exact}, in, out);
        return;
    }
#if QMCU_KERNELS_DSP
    conv_kernel::conv2dDsp<Shape>(scratch, p, in, out);
#else
    conv_kernel::conv2dScalar(kGeo, scratch, p, kernel_detail::FastRequant{p.requant.scales, p.requant.qmin, p.requant.qmax},
                              in, out);
#endif
}

}  // namespace qmcu
