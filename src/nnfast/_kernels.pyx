# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The Cython seam: checked memoryviews in, C kernels called with the GIL released.

Each function here checks every size against the buffers it is handed before a
C kernel touches memory, so a wrong call raises ValueError instead of reading
or writing out of bounds. Argument *meaning* (ndim, dtype rules, messages for
users) is checked earlier, in ``nnfast._checks`` via the public wrappers; this
layer is the last line of defence. One function per op family; the C side
lives in ``csrc/<family>.c`` with a header each.
"""
from cython cimport floating
from libc.stdint cimport int64_t

cdef extern from "threads.h":
    int nnf_have_openmp() nogil
    int nnf_max_threads() nogil

cdef extern from "im2col.h":
    int64_t nnf_conv_out_size(int64_t n, int64_t f, int64_t stride, int64_t pad) nogil
    int nnf_im2col_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                       float *col, int n_threads) nogil
    int nnf_im2col_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                       double *col, int n_threads) nogil
    int nnf_col2im_f32(const float *col, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                       float *x, int n_threads) nogil
    int nnf_col2im_f64(const double *col, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                       double *x, int n_threads) nogil


def have_openmp():
    """True if the kernels were compiled with OpenMP."""
    return bool(nnf_have_openmp())


def max_threads():
    """omp_get_max_threads() (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return nnf_max_threads()


cdef inline int64_t _out_size(int64_t n, int64_t f, int64_t stride, int64_t pad, str what) except -2:
    cdef int64_t o = nnf_conv_out_size(n, f, stride, pad)
    if o < 0:
        raise ValueError(
            f"{what}: window {f} with stride {stride} and pad {pad} does not fit an input of {n}")
    return o


cdef inline int _threads(int n_threads) except -1:
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return n_threads


def im2col(const floating[:, :, :, ::1] x, int64_t filter_h, int64_t filter_w,
           int64_t stride, int64_t pad, floating[:, ::1] out, int n_threads=1):
    """Unfold x (N, C, H, W) into out (N*OH*OW, C*FH*FW); rows (n, oh, ow), columns (c, i, j)."""
    cdef int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int64_t OH = _out_size(H, filter_h, stride, pad, "im2col")
    cdef int64_t OW = _out_size(W, filter_w, stride, pad, "im2col")
    if out.shape[0] != N * OH * OW or out.shape[1] != C * filter_h * filter_w:
        raise ValueError(
            f"im2col: out must have shape ({N * OH * OW}, {C * filter_h * filter_w}), "
            f"got ({out.shape[0]}, {out.shape[1]})")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_im2col_f32(&x[0, 0, 0, 0], N, C, H, W, filter_h, filter_w, stride, pad,
                                &out[0, 0], nt)
        else:
            rc = nnf_im2col_f64(&x[0, 0, 0, 0], N, C, H, W, filter_h, filter_w, stride, pad,
                                &out[0, 0], nt)
    if rc != 0:
        raise ValueError("im2col: invalid arguments")


def col2im(const floating[:, ::1] col, floating[:, :, :, ::1] out, int64_t filter_h,
           int64_t filter_w, int64_t stride, int64_t pad, int n_threads=1):
    """Fold col (N*OH*OW, C*FH*FW) back into out (N, C, H, W), summing overlaps (adjoint of im2col)."""
    cdef int64_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef int64_t OH = _out_size(H, filter_h, stride, pad, "col2im")
    cdef int64_t OW = _out_size(W, filter_w, stride, pad, "col2im")
    if col.shape[0] != N * OH * OW or col.shape[1] != C * filter_h * filter_w:
        raise ValueError(
            f"col2im: col must have shape ({N * OH * OW}, {C * filter_h * filter_w}) for "
            f"input_shape ({N}, {C}, {H}, {W}), got ({col.shape[0]}, {col.shape[1]})")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * C * H * W == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_col2im_f32(&col[0, 0], N, C, H, W, filter_h, filter_w, stride, pad,
                                &out[0, 0, 0, 0], nt)
        else:
            rc = nnf_col2im_f64(&col[0, 0], N, C, H, W, filter_h, filter_w, stride, pad,
                                &out[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("col2im: invalid arguments")
