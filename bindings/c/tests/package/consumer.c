/* A program a C user writes against the installed package: it must build with find_package(BnNative) or
 * pkg-config alone, run without LD_LIBRARY_PATH, and see the library its header describes.
 * Usage: consumer [expected-isa] */
#include <bnnative.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv) {
    if (bn_version_number() != BN_VERSION_NUMBER) {
        printf("FAIL: header %d, library %u\n", BN_VERSION_NUMBER, bn_version_number());
        return 1;
    }
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8], mean, invstd;
    bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F32, 8, 1, 1, 1 };
    bn_status s = bn_batch_norm_forward_training(&d, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, &mean, &invstd);
    if (s != BN_STATUS_SUCCESS || mean != 4.5f) {
        printf("FAIL: %s (%s), mean %g\n", bn_status_string(s), bn_last_error_message(), mean);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], bn_get_isa()) != 0) {
        printf("FAIL: kernels %s, expected %s\n", bn_get_isa(), argv[1]);
        return 1;
    }
    printf("BnNative %s (%u), kernels %s: ok\n", bn_version(), bn_version_number(), bn_get_isa());
    return 0;
}
