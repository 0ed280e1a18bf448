// Max and average pooling on NHWC int8 tensors: spec conv_reference.max_pool2d / avg_pool2d in
// tools/qmcu/quant/conv_reference.py. The same scale and zero point in and out, so there is nothing to prepare
// on the host but the clamp (a fused activation; [-128, 127] clamps nothing).
//
//   qmcu::maxPool2d<qmcu::PoolShape<H, W, C, KH, KW, SH, SW, PadT, PadB, PadL, PadR>>(scratch, params, in, out)
//     out[oy][ox][c] = clamp(max over the window's REAL taps (padded taps are ignored), qmin, qmax)
//   qmcu::avgPool2d<qmcu::PoolShape<H, W, C, KH, KW, SH, SW, 0, 0, 0, 0>>(scratch, params, in, out)
//     s = sum over the window (n = KH*KW taps, no padding);
//     out = clamp((s + (s > 0 ? n/2 : -(n/2))) / n, qmin, qmax)     (TFLite's rounding; / truncates toward zero)
//   A global average pool is avgPool2d with KH = H, KW = W.
//
// in: H x W x C int8, out: OH x OW x C int8 (batch 1; any alignment; no overlap). scratch: none
// (Shape::kScratchBytes = 0; pass nullptr). Every max-pool window must hold a real tap (static_assert).
//
// Accumulation (average): the taps in row-major window order, in int32 (scalar) or, for n <= 256, in 16-bit
// lanes (DSP: SXTAB16 adds the sign-extended bytes 0,2 / 1,3 of four channels; |s| <= 128 * 256 fits int16).
// DSP max: SSUB8 + SEL per four channels and tap; the clamp once per four channels (SSUB8/SEL twice).
#pragma once

#include "common.hpp"

namespace qmcu {

template <int32_t H, int32_t W, int32_t C, int32_t KH, int32_t KW, int32_t SH, int32_t SW, int32_t PadT,
          int32_t PadB, int32_t PadL, int32_t PadR>
struct PoolShape {
    static_assert(H > 0 && W > 0 && C > 0 && KH > 0 && KW > 0 && SH > 0 && SW > 0, "positive sizes and strides");
    static_assert(PadT >= 0 && PadB >= 0 && PadL >= 0 && PadR >= 0, "padding is not negative");
    static_assert(H + PadT + PadB >= KH && W + PadL + PadR >= KW, "the window fits the padded input");
    static constexpr int32_t kH = H, kW = W, kC = C, kKH = KH, kKW = KW, kSH = SH, kSW = SW;
    static constexpr int32_t kPadT = PadT, kPadB = PadB, kPadL = PadL, kPadR = PadR;
    static constexpr int32_t kOH = (H + PadT + PadB - KH) / SH + 1;
    static constexpr int32_t kOW = (W + PadL + PadR - KW) / SW + 1;
    static constexpr int32_t kTaps = KH * KW;
    static constexpr size_t kScratchBytes = 0;
    static constexpr size_t kInputBytes = static_cast<size_t>(H) * W * C;
    static constexpr size_t kOutputBytes = static_cast<size_t>(kOH) * kOW * C;
    // Every window holds a real tap (needed by max pooling): its first row/column is inside the input.
    static constexpr bool kWindowsHoldRealTaps =
        PadT < KH && PadL < KW && (kOH - 1) * SH - PadT < H && (kOW - 1) * SW - PadL < W;
};

struct PoolParams {
    int32_t qmin;  // the output clamp, int8 (a fused activation)
    int32_t qmax;
};

namespace pool_kernel {

struct Geometry {
    int32_t h, w, c, kh, kw, sh, sw, pad_t, pad_l, oh, ow;
};

template <class S>
constexpr Geometry geometryOf() {
    return Geometry{S::kH, S::kW, S::kC, S::kKH, S::kKW, S::kSH, S::kSW, S::kPadT, S::kPadL, S::kOH, S::kOW};
}

// The window of output (oy, ox) clipped to the input: rows [y0, y1), columns [x0, x1).
struct Window {
    int32_t y0, y1, x0, x1;
};
QMCU_KERNEL_INLINE Window windowOf(const Geometry& g, int32_t oy, int32_t ox) {
    int32_t y0 = oy * g.sh - g.pad_t;
    int32_t x0 = ox * g.sw - g.pad_l;
    int32_t y1 = y0 + g.kh;
    int32_t x1 = x0 + g.kw;
    y0 = y0 < 0 ? 0 : y0;
    x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > g.h ? g.h : y1;
    x1 = x1 > g.w ? g.w : x1;
    return Window{y0, y1, x0, x1};
}

QMCU_KERNEL_INLINE int32_t clampTo(int32_t v, const PoolParams& p) { return v < p.qmin ? p.qmin : (v > p.qmax ? p.qmax : v); }

// TFLite's rounded average of a window sum s over n taps.
QMCU_KERNEL_INLINE int32_t roundedAverage(int32_t s, int32_t n) { return (s + (s > 0 ? n / 2 : -(n / 2))) / n; }

QMCU_KERNEL_NOINLINE void maxScalar(const Geometry& g, const PoolParams& p, const int8_t* in, int8_t* out) {
    for (int32_t oy = 0; oy < g.oh; ++oy) {
        for (int32_t ox = 0; ox < g.ow; ++ox) {
            const Window win = windowOf(g, oy, ox);
            for (int32_t c = 0; c < g.c; ++c) {
                int32_t m = -128;
                for (int32_t y = win.y0; y < win.y1; ++y) {
                    for (int32_t x = win.x0; x < win.x1; ++x) {
                        const int32_t v = in[(y * g.w + x) * g.c + c];
                        m = v > m ? v : m;
                    }
                }
                *out++ = static_cast<int8_t>(clampTo(m, p));
            }
        }
    }
}

QMCU_KERNEL_NOINLINE void avgScalar(const Geometry& g, const PoolParams& p, const int8_t* in, int8_t* out) {
    const int32_t n = g.kh * g.kw;
    for (int32_t oy = 0; oy < g.oh; ++oy) {
        for (int32_t ox = 0; ox < g.ow; ++ox) {
            const Window win = windowOf(g, oy, ox);
            for (int32_t c = 0; c < g.c; ++c) {
                int32_t s = 0;
                for (int32_t y = win.y0; y < win.y1; ++y) {
                    for (int32_t x = win.x0; x < win.x1; ++x) {
                        s += in[(y * g.w + x) * g.c + c];
                    }
                }
                *out++ = static_cast<int8_t>(clampTo(roundedAverage(s, n), p));
            }
        }
    }
}

#if QMCU_KERNELS_DSP

template <class S>
QMCU_KERNEL_NOINLINE void maxDsp(const PoolParams& p, const int8_t* in, int8_t* out) {
    constexpr Geometry kGeo = geometryOf<S>();
    constexpr int32_t kQuads = S::kC / 4;
    constexpr int32_t kTail = S::kC % 4;
    const uint32_t lo4 = kisa::replicate8(p.qmin);
    const uint32_t hi4 = kisa::replicate8(p.qmax);
    for (int32_t oy = 0; oy < S::kOH; ++oy) {
        for (int32_t ox = 0; ox < S::kOW; ++ox) {
            const Window win = windowOf(kGeo, oy, ox);
            const int8_t* first = in + (win.y0 * S::kW + win.x0) * S::kC;
            for (int32_t q = 0; q < kQuads; ++q) {
                uint32_t m = kisa::load32(first + 4 * q);
                for (int32_t y = win.y0; y < win.y1; ++y) {
                    const int8_t* row = in + (y * S::kW) * S::kC + 4 * q;
                    for (int32_t x = win.x0; x < win.x1; ++x) {
                        m = kisa::maxBytes(m, kisa::load32(row + x * S::kC));
                    }
                }
                kisa::store32(out + 4 * q, kisa::clampBytes(m, lo4, hi4));
            }
            for (int32_t c = S::kC - kTail; c < S::kC; ++c) {
                int32_t m = first[c];
                for (int32_t y = win.y0; y < win.y1; ++y) {
                    for (int32_t x = win.x0; x < win.x1; ++x) {
                        const int32_t v = in[(y * S::kW + x) * S::kC + c];
                        m = v > m ? v : m;
                    }
                }
                out[c] = static_cast<int8_t>(clampTo(m, p));
            }
            out += S::kC;
        }
    }
}

template <class S>
QMCU_KERNEL_NOINLINE void avgDsp(const PoolParams& p, const int8_t* in, int8_t* out) {
    static_assert(S::kTaps <= 256, "16-bit lane sums need at most 256 taps");
    constexpr int32_t kQuads = S::kC / 4;
    constexpr int32_t kTail = S::kC % 4;
    constexpr int32_t kN = S::kTaps;
    const uint32_t lo4 = kisa::replicate8(p.qmin);
    const uint32_t hi4 = kisa::replicate8(p.qmax);
    for (int32_t oy = 0; oy < S::kOH; ++oy) {
        for (int32_t ox = 0; ox < S::kOW; ++ox) {
            const int8_t* first = in + ((oy * S::kSH) * S::kW + ox * S::kSW) * S::kC;
            for (int32_t q = 0; q < kQuads; ++q) {
                uint32_t even = 0;  // channels 4q, 4q+2 in 16-bit lanes
                uint32_t odd = 0;   // channels 4q+1, 4q+3
                const int8_t* row = first + 4 * q;
                for (int32_t ky = 0; ky < S::kKH; ++ky) {
#pragma GCC unroll 8
                    for (int32_t kx = 0; kx < S::kKW; ++kx) {
                        const uint32_t x = kisa::load32(row + kx * S::kC);
                        even = kisa::sxtab16(even, x);
                        odd = kisa::sxtab16Ror8(odd, x);
                    }
                    row += S::kW * S::kC;
                }
                const int32_t s0 = static_cast<int16_t>(static_cast<uint16_t>(even));
                const int32_t s2 = static_cast<int16_t>(static_cast<uint16_t>(even >> 16));
                const int32_t s1 = static_cast<int16_t>(static_cast<uint16_t>(odd));
                const int32_t s3 = static_cast<int16_t>(static_cast<uint16_t>(odd >> 16));
                const int32_t v[4] = {roundedAverage(s0, kN), roundedAverage(s1, kN), roundedAverage(s2, kN),
                                      roundedAverage(s3, kN)};
                kisa::storeClamped<4>(out + 4 * q, v, lo4, hi4);
            }
            for (int32_t c = S::kC - kTail; c < S::kC; ++c) {
                int32_t s = 0;
                for (int32_t ky = 0; ky < S::kKH; ++ky) {
                    for (int32_t kx = 0; kx < S::kKW; ++kx) {
                        s += first[(ky * S::kW + kx) * S::kC + c];
                    }
                }
                out[c] = static_cast<int8_t>(clampTo(roundedAverage(s, kN), p));
            }
            out += S::kC;
        }
    }
}

#endif  // QMCU_KERNELS_DSP

}  // namespace pool_kernel

// The entry points (see the top of this file).
template <class Shape>
QMCU_KERNEL_INLINE void maxPool2d(void*, const PoolParams& p, const int8_t* in, int8_t* out) {
    static_assert(Shape::kWindowsHoldRealTaps, "every max-pool window must hold a real tap (padding < kernel)");
#if QMCU_KERNELS_DSP
    pool_kernel::maxDsp<Shape>(p, in, out);
#else
    static constexpr pool_kernel::Geometry kGeo = pool_kernel::geometryOf<Shape>();
    pool_kernel::maxScalar(kGeo, p, in, out);
#endif
}

template <class Shape>
QMCU_KERNEL_INLINE void avgPool2d(void*, const PoolParams& p, const int8_t* in, int8_t* out) {
    static_assert(Shape::kPadT == 0 && Shape::kPadB == 0 && Shape::kPadL == 0 && Shape::kPadR == 0,
                  "average pooling has no padding");
#if QMCU_KERNELS_DSP
    if constexpr (Shape::kTaps <= 256) {
        pool_kernel::avgDsp<Shape>(p, in, out);
        return;
    }
#endif
    static constexpr pool_kernel::Geometry kGeo = pool_kernel::geometryOf<Shape>();
    pool_kernel::avgScalar(kGeo, p, in, out);
}

}  // namespace qmcu
