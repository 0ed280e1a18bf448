// Fully connected layer on affine int8 tensors (spec: reference.dense in tools/qmcu/quant/reference.py).
//   acc[o] = biases[o] + sum_i (in[i] - input_zero_point) * weights[o * NIn + i]
//   out[o] = requantizer.apply(acc[o])
// weights are row-major [NOut][NIn] (PyTorch nn.Linear layout), symmetric (zero point 0).
// The emitter proves at build time that no accumulator can overflow Acc for any int8 input.
#pragma once

#include "config.hpp"
#include "qaffine.hpp"

namespace qmcu {

template <typename In, typename W, typename Acc, typename Out, size_t NIn, size_t NOut>
struct QDense {
    static constexpr size_t kInputs = NIn;
    static constexpr size_t kOutputs = NOut;

    const W* weights;
    const Acc* biases;
    In input_zero_point;
    Requantizer requantizer;

    void forward(const In* in, Out* out) const {
        for (size_t o = 0; o < NOut; ++o) {
            const W* row = weights + o * NIn;
            Acc acc = biases[o];
            for (size_t i = 0; i < NIn; ++i) {
                acc += (static_cast<Acc>(in[i]) - static_cast<Acc>(input_zero_point)) * static_cast<Acc>(row[i]);
            }
            out[o] = static_cast<Out>(requantizer.apply(acc));
        }
    }
};

}  // namespace qmcu
