/* BnNative in ten lines of C: a BatchNorm training step (forward, then backward) on a small NCHW batch.
 * Build: ./build.sh && cc examples/batch_norm_demo.c -Iartifacts/include -Lartifacts/lib -lbnnative -Wl,-rpath,"$PWD/artifacts/lib"
 * or, from an installed package (./build.sh --prefix DIR): cc examples/batch_norm_demo.c $(PKG_CONFIG_PATH=DIR/lib/pkgconfig pkg-config --cflags --libs bnnative) */
#include <bnnative.h>
#include <stdio.h>

int main(void) {
    enum { N = 4, C = 2, H = 2, W = 2, COUNT = N * C * H * W };
    float x[COUNT], y[COUNT], dy[COUNT], dx[COUNT];
    float gamma[C] = { 1.0f, 2.0f }, beta[C] = { 0.0f, 0.5f }, running_mean[C] = { 0, 0 }, running_var[C] = { 1, 1 };
    float mean[C], invstd[C], dgamma[C], dbeta[C];
    for (int i = 0; i < COUNT; i++) { x[i] = (float)(i % 7) + 10.0f * (float)((i / (H * W)) % C); dy[i] = 0.25f * (float)(i % 5) - 0.5f; }

    bn_tensor_desc desc = { BN_LAYOUT_NCHW, BN_DTYPE_F32, N, C, H, W };
    bn_status s = bn_batch_norm_forward_training(&desc, x, y, gamma, beta, running_mean, running_var,
                                                 0.1, 1e-5, mean, invstd);
    if (s != BN_STATUS_SUCCESS) { fprintf(stderr, "forward: %s: %s\n", bn_status_string(s), bn_last_error_message()); return 1; }
    s = bn_batch_norm_backward(&desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta);
    if (s != BN_STATUS_SUCCESS) { fprintf(stderr, "backward: %s: %s\n", bn_status_string(s), bn_last_error_message()); return 1; }

    printf("BnNative %s, kernels: %s, threads: %d\n", bn_version(), bn_get_isa(), bn_get_num_threads());
    for (int c = 0; c < C; c++) {
        printf("channel %d: mean %.4f  invstd %.4f  running_mean %.4f  running_var %.4f  dgamma %.4f  dbeta %.4f\n",
               c, mean[c], invstd[c], running_mean[c], running_var[c], dgamma[c], dbeta[c]);
        printf("  y[n=0]  ="); for (int i = 0; i < H * W; i++) printf(" %8.4f", y[c * H * W + i]);
        printf("\n  dx[n=0] ="); for (int i = 0; i < H * W; i++) printf(" %8.4f", dx[c * H * W + i]);
        printf("\n");
    }
    /* A bad call returns a status, writes nothing, and says why. */
    desc.n = 0;
    s = bn_batch_norm_forward_inference(&desc, x, y, gamma, beta, running_mean, running_var, 1e-5);
    printf("n = 0 -> %s: %s\n", bn_status_string(s), bn_last_error_message());
    return 0;
}
