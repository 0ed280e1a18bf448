// Element-wise add of two int8 tensors with their own scales (a residual connection): TFLite's int8 ADD,
// spec conv_reference.add / add_params in tools/qmcu/quant/conv_reference.py.
//
//   qmcu::add<qmcu::AddShape<Count>>(scratch, params, in1, in2, out)      (Count elements, any layout)
//   v_i      = in_i + input_i_offset                                 (offset = -zero_point: v in [-255, 255])
//   scaled_i = multiplyByQuantizedMultiplier(v_i * 2^left_shift, input_i_multiplier, input_i_shift)   (shift <= 0)
//   out      = clamp(multiplyByQuantizedMultiplier(scaled_1 + scaled_2, output_multiplier, output_shift)
//                    + output_offset, qmin, qmax)
// with fixedpoint.hpp's multiplyByQuantizedMultiplier (shift > 0 a saturating left shift before the high
// multiply, shift < 0 a rounding right shift after it). out may be in1 or in2 (in place); scratch: none.
//
// What the host prepares (tools/qmcu/codegen/conv_layout.py: prepare_add): AddParams from add_params(), checked
// (left_shift 20, input shifts in [-31, 0], offsets in [-127, 128]). Nothing is reordered.
//
// DSP variant: SRDHM(v * 2^20, m) = floor((v * 2^20 * m + 2^30) / 2^31) = floor((v * 2^21 * m + 2^31) / 2^32),
// which is one SMMULR of v * 2^21 (|v * 2^21| < 2^29: exact, and never the saturating INT32_MIN * INT32_MIN);
// then roundingDivideByPOT as in fixedpoint.hpp. The output scaling uses RightShiftRequant (qdense_fast.hpp)
// when output_shift is in [-23, -1], multiplyByQuantizedMultiplier otherwise. Scalar variant: fixedpoint.hpp
// step by step. Both give Requantizer-exact bits for every int8 input pair.
#pragma once

#include "common.hpp"

namespace qmcu {

template <int32_t Count>
struct AddShape {
    static_assert(Count > 0, "an add needs elements");
    static constexpr int32_t kCount = Count;
    static constexpr size_t kScratchBytes = 0;
    static constexpr size_t kInputBytes = static_cast<size_t>(Count);  // each of the two inputs
    static constexpr size_t kOutputBytes = static_cast<size_t>(Count);
};

// TFLite's ADD parameters (see conv_reference.AddParams): offsets are the NEGATED input zero points and the
// output zero point; shifts follow the project's convention (> 0 left, < 0 right).
struct AddParams {
    int32_t left_shift;         // 20
    int32_t input1_offset;      // -zero_point of input 1
    int32_t input1_multiplier;  // Q0.31
    int32_t input1_shift;       // in [-31, 0]
    int32_t input2_offset;      // -zero_point of input 2
    int32_t input2_multiplier;
    int32_t input2_shift;       // in [-31, 0]
    int32_t output_multiplier;
    int32_t output_shift;       // in [-31, 30]
    int32_t output_offset;      // +zero_point of the output
    int32_t qmin;               // the output clamp, int8
    int32_t qmax;
};

namespace add_kernel {

QMCU_KERNEL_INLINE int32_t clampTo(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

QMCU_KERNEL_NOINLINE void addScalar(const AddParams& p, const int8_t* a, const int8_t* b, int8_t* out, int32_t n) {
    const int32_t scale = int32_t{1} << p.left_shift;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t v1 = (a[i] + p.input1_offset) * scale;  // |v| <= 255 * 2^20: no overflow
        const int32_t v2 = (b[i] + p.input2_offset) * scale;
        const int32_t s1 = multiplyByQuantizedMultiplier(v1, p.input1_multiplier, p.input1_shift);
        const int32_t s2 = multiplyByQuantizedMultiplier(v2, p.input2_multiplier, p.input2_shift);
        const int64_t o = int64_t{multiplyByQuantizedMultiplier(s1 + s2, p.output_multiplier, p.output_shift)} +
                          p.output_offset;
        out[i] = static_cast<int8_t>(o < p.qmin ? p.qmin : (o > p.qmax ? p.qmax : o));
    }
}

#if QMCU_KERNELS_DSP

// multiplyByQuantizedMultiplier(v * 2^20, m, shift) for |v| <= 255 and shift <= 0: SMMULR, then the rounding shift.
QMCU_KERNEL_INLINE int32_t scaleInput(int32_t v, int32_t m, int32_t right) {
    return roundingDivideByPOT(kisa::smmulr(v * (int32_t{1} << 21), m), right);
}

template <bool kFastOut>
QMCU_KERNEL_INLINE void addLoop(const AddParams& p, const int8_t* a, const int8_t* b, int8_t* out, int32_t n) {
    const int32_t r1 = -p.input1_shift;
    const int32_t r2 = -p.input2_shift;
    const RightShiftRequant fast = RightShiftRequant::from(
        Requantizer{p.output_multiplier, p.output_shift, p.output_offset, p.qmin, p.qmax});
    for (int32_t i = 0; i < n; ++i) {
        const int32_t s = scaleInput(a[i] + p.input1_offset, p.input1_multiplier, r1) +
                          scaleInput(b[i] + p.input2_offset, p.input2_multiplier, r2);
        if constexpr (kFastOut) {
            out[i] = static_cast<int8_t>(fast.apply(s));
        } else {
            const int64_t o = int64_t{multiplyByQuantizedMultiplier(s, p.output_multiplier, p.output_shift)} +
                              p.output_offset;
            out[i] = static_cast<int8_t>(o < p.qmin ? p.qmin : (o > p.qmax ? p.qmax : o));
        }
    }
}

QMCU_KERNEL_NOINLINE void addDsp(const AddParams& p, const int8_t* a, const int8_t* b, int8_t* out, int32_t n) {
    if (RightShiftRequant::covers(Requantizer{p.output_multiplier, p.output_shift, 0, 0, 0})) {
        addLoop<true>(p, a, b, out, n);
    } else {
        addLoop<false>(p, a, b, out, n);
    }
}

#endif  // QMCU_KERNELS_DSP

}  // namespace add_kernel

// The entry point (see the top of this file).
template <class Shape>
QMCU_KERNEL_INLINE void add(void*, const AddParams& p, const int8_t* in1, const int8_t* in2, int8_t* out) {
#if QMCU_KERNELS_DSP
    if (p.left_shift == 20) {
        add_kernel::addDsp(p, in1, in2, out, Shape::kCount);
        return;
    }
#endif
    add_kernel::addScalar(p, in1, in2, out, Shape::kCount);
}

}  // namespace qmcu
