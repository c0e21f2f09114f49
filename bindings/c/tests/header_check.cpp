// Compiled as C++ by CMake: bnnative.h must be C++ clean (extern "C", no C-only constructs).
#include "bnnative.h"

static_assert(sizeof(bn_tensor_desc) == 40, "bn_tensor_desc is two int32 and four int64");

extern "C" bn_status header_check_call(const bn_tensor_desc* d, const float* x, float* y) {
    return bn_batch_norm_forward_inference(d, x, y, nullptr, nullptr, x, x, 1e-5);
}
