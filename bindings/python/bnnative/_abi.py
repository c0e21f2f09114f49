"""The C ABI of libbnnative as data: emitted by tools/BnAbi from the library's [CExport] methods; do not edit.

FUNCTIONS maps each entry point to (return kind, [(parameter, kind), ...]); the kinds are "status", "int32", "int64",
"uint32", "text" (const char*), "desc" (const bn_tensor_desc*), "pointer" and "double". bnnative._native gives
ctypes their types from it.
"""

VERSION = (0, 3, 0)

STATUS = {
    0: "BN_STATUS_SUCCESS",
    1: "BN_STATUS_NULL_POINTER",
    2: "BN_STATUS_BAD_SHAPE",
    3: "BN_STATUS_BAD_ARGUMENT",
    4: "BN_STATUS_UNSUPPORTED",
    5: "BN_STATUS_INTERNAL",
}

LAYOUTS = {
    "NC": 0,
    "NCHW": 1,
    "NHWC": 2,
}

DTYPES = {
    "F32": 0,
    "F64": 1,
    "F16": 2,
    "BF16": 3,
}

DESC_FIELDS = [("layout", "int32"), ("dtype", "int32"), ("n", "int64"), ("c", "int64"), ("h", "int64"), ("w", "int64")]

FUNCTIONS = {
    "bn_status_string": ("text", [("status", "int32")]),
    "bn_last_error_message": ("text", []),
    "bn_version": ("text", []),
    "bn_version_number": ("uint32", []),
    "bn_get_isa": ("text", []),
    "bn_set_num_threads": ("int32", [("n", "int32")]),
    "bn_get_num_threads": ("int32", []),
    "bn_batch_norm_forward_training": ("status", [("desc", "desc"), ("x", "pointer"), ("y", "pointer"), ("gamma", "pointer"), ("beta", "pointer"), ("running_mean", "pointer"), ("running_var", "pointer"), ("momentum", "double"), ("eps", "double"), ("save_mean", "pointer"), ("save_invstd", "pointer")]),
    "bn_batch_norm_forward_inference": ("status", [("desc", "desc"), ("x", "pointer"), ("y", "pointer"), ("gamma", "pointer"), ("beta", "pointer"), ("running_mean", "pointer"), ("running_var", "pointer"), ("eps", "double")]),
    "bn_batch_norm_backward": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("dx", "pointer"), ("gamma", "pointer"), ("save_mean", "pointer"), ("save_invstd", "pointer"), ("dgamma", "pointer"), ("dbeta", "pointer")]),
    "bn_batch_norm_backward_inference": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("dx", "pointer"), ("gamma", "pointer"), ("running_mean", "pointer"), ("running_var", "pointer"), ("eps", "double"), ("dgamma", "pointer"), ("dbeta", "pointer")]),
    "bn_batch_renorm_forward_training": ("status", [("desc", "desc"), ("x", "pointer"), ("y", "pointer"), ("gamma", "pointer"), ("beta", "pointer"), ("running_mean", "pointer"), ("running_var", "pointer"), ("momentum", "double"), ("eps", "double"), ("rmax", "double"), ("dmax", "double"), ("save_mean", "pointer"), ("save_invstd", "pointer"), ("save_r", "pointer"), ("save_d", "pointer")]),
    "bn_batch_renorm_backward": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("dx", "pointer"), ("gamma", "pointer"), ("save_mean", "pointer"), ("save_invstd", "pointer"), ("save_r", "pointer"), ("save_d", "pointer"), ("dgamma", "pointer"), ("dbeta", "pointer")]),
    "bn_layer_norm_forward": ("status", [("desc", "desc"), ("x", "pointer"), ("y", "pointer"), ("gamma", "pointer"), ("beta", "pointer"), ("eps", "double"), ("save_mean", "pointer"), ("save_invstd", "pointer")]),
    "bn_layer_norm_backward": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("dx", "pointer"), ("gamma", "pointer"), ("save_mean", "pointer"), ("save_invstd", "pointer"), ("dgamma", "pointer"), ("dbeta", "pointer")]),
    "bn_batch_norm_partial_statistics": ("status", [("desc", "desc"), ("x", "pointer"), ("partial", "pointer")]),
    "bn_batch_norm_merge_statistics": ("status", [("dtype", "int32"), ("channels", "int64"), ("parts", "int64"), ("partials", "pointer"), ("running_mean", "pointer"), ("running_var", "pointer"), ("momentum", "double"), ("eps", "double"), ("mean", "pointer"), ("invstd", "pointer")]),
    "bn_batch_renorm_merge_statistics": ("status", [("dtype", "int32"), ("channels", "int64"), ("parts", "int64"), ("partials", "pointer"), ("running_mean", "pointer"), ("running_var", "pointer"), ("momentum", "double"), ("eps", "double"), ("rmax", "double"), ("dmax", "double"), ("mean", "pointer"), ("invstd", "pointer"), ("r", "pointer"), ("d", "pointer")]),
    "bn_batch_norm_forward_with_statistics": ("status", [("desc", "desc"), ("x", "pointer"), ("y", "pointer"), ("gamma", "pointer"), ("beta", "pointer"), ("mean", "pointer"), ("invstd", "pointer")]),
    "bn_batch_renorm_forward_with_statistics": ("status", [("desc", "desc"), ("x", "pointer"), ("y", "pointer"), ("gamma", "pointer"), ("beta", "pointer"), ("mean", "pointer"), ("invstd", "pointer"), ("r", "pointer"), ("d", "pointer")]),
    "bn_batch_norm_backward_partial_sums": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("mean", "pointer"), ("partial", "pointer")]),
    "bn_batch_norm_backward_with_sums": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("dx", "pointer"), ("gamma", "pointer"), ("mean", "pointer"), ("invstd", "pointer"), ("parts", "int64"), ("partials", "pointer"), ("dgamma", "pointer"), ("dbeta", "pointer")]),
    "bn_batch_renorm_backward_with_sums": ("status", [("desc", "desc"), ("x", "pointer"), ("dy", "pointer"), ("dx", "pointer"), ("gamma", "pointer"), ("mean", "pointer"), ("invstd", "pointer"), ("r", "pointer"), ("d", "pointer"), ("parts", "int64"), ("partials", "pointer"), ("dgamma", "pointer"), ("dbeta", "pointer")]),
}
