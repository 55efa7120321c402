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
from libc.stdint cimport int32_t, int64_t, INT32_MAX

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

cdef extern from "pool.h":
    int nnf_maxpool_fwd_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            float *out, int32_t *argmax, int n_threads) nogil
    int nnf_maxpool_fwd_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            double *out, int32_t *argmax, int n_threads) nogil
    int nnf_maxpool_bwd_f32(const float *dout, const int32_t *argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t PH, int64_t PW, int64_t stride,
                            int64_t pad, float *dx, int n_threads) nogil
    int nnf_maxpool_bwd_f64(const double *dout, const int32_t *argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t PH, int64_t PW, int64_t stride,
                            int64_t pad, double *dx, int n_threads) nogil
    int nnf_avgpool_fwd_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            float *out, int n_threads) nogil
    int nnf_avgpool_fwd_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            double *out, int n_threads) nogil
    int nnf_avgpool_bwd_f32(const float *dout, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            float *dx, int n_threads) nogil
    int nnf_avgpool_bwd_f64(const double *dout, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            double *dx, int n_threads) nogil

cdef extern from "conv.h":
    int nnf_conv_bias_nchw_f32(const float *rows, const float *b, int64_t N, int64_t FN,
                               int64_t P, float *out, int n_threads) nogil
    int nnf_conv_bias_nchw_f64(const double *rows, const double *b, int64_t N, int64_t FN,
                               int64_t P, double *out, int n_threads) nogil
    int nnf_conv_bwd_rows_db_f32(const float *dout, int64_t N, int64_t FN, int64_t P,
                                 float *rows, float *db, double *partial, int n_threads) nogil
    int nnf_conv_bwd_rows_db_f64(const double *dout, int64_t N, int64_t FN, int64_t P,
                                 double *rows, double *db, double *partial, int n_threads) nogil


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


# ---- pooling (csrc/pool.c): x/dx (N, C, H, W), out/dout/argmax (N, C, OH, OW) ----------

cdef inline int _pool_check(int64_t N, int64_t C, int64_t H, int64_t W, int64_t pool_h,
                            int64_t pool_w, int64_t stride, int64_t pad, object small,
                            str what) except -1:
    """Check the (N, C, OH, OW) array ``small`` against the geometry of x (N, C, H, W)."""
    cdef int64_t OH = _out_size(H, pool_h, stride, pad, what)
    cdef int64_t OW = _out_size(W, pool_w, stride, pad, what)
    if pool_h > INT32_MAX // pool_w:
        raise ValueError(f"{what}: pooling window ({pool_h}, {pool_w}) is too large")
    if tuple(small.shape[:4]) != (N, C, OH, OW):
        raise ValueError(f"{what}: expected pooled arrays of shape {(N, C, OH, OW)}, "
                         f"got {tuple(small.shape[:4])}")
    return 0


def maxpool_forward(const floating[:, :, :, ::1] x, int64_t pool_h, int64_t pool_w,
                    int64_t stride, int64_t pad, floating[:, :, :, ::1] out,
                    int32_t[:, :, :, ::1] argmax, int n_threads=1):
    """out = max over each window of x (padding -inf); argmax = offset i*pool_w + j of the first maximum."""
    cdef int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, out, "maxpool_forward")
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, argmax, "maxpool_forward")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3] == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_maxpool_fwd_f32(&x[0, 0, 0, 0], N, C, H, W, pool_h, pool_w, stride, pad,
                                     &out[0, 0, 0, 0], &argmax[0, 0, 0, 0], nt)
        else:
            rc = nnf_maxpool_fwd_f64(&x[0, 0, 0, 0], N, C, H, W, pool_h, pool_w, stride, pad,
                                     &out[0, 0, 0, 0], &argmax[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("maxpool_forward: invalid arguments")


def maxpool_backward(const floating[:, :, :, ::1] dout, const int32_t[:, :, :, ::1] argmax,
                     floating[:, :, :, ::1] dx, int64_t pool_h, int64_t pool_w,
                     int64_t stride, int64_t pad, int n_threads=1):
    """dx = dout scattered to the argmax of each window (overlaps add up)."""
    cdef int64_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, dout, "maxpool_backward")
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, argmax, "maxpool_backward")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * C * H * W == 0:
        return
    if dout.shape[2] * dout.shape[3] == 0:
        dx[...] = 0
        return
    with nogil:
        if floating is float:
            rc = nnf_maxpool_bwd_f32(&dout[0, 0, 0, 0], &argmax[0, 0, 0, 0], N, C, H, W,
                                     pool_h, pool_w, stride, pad, &dx[0, 0, 0, 0], nt)
        else:
            rc = nnf_maxpool_bwd_f64(&dout[0, 0, 0, 0], &argmax[0, 0, 0, 0], N, C, H, W,
                                     pool_h, pool_w, stride, pad, &dx[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("maxpool_backward: invalid arguments")


def avgpool_forward(const floating[:, :, :, ::1] x, int64_t pool_h, int64_t pool_w,
                    int64_t stride, int64_t pad, floating[:, :, :, ::1] out, int n_threads=1):
    """out = sum over each window of x (padding 0) / (pool_h*pool_w)."""
    cdef int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, out, "avgpool_forward")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3] == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_avgpool_fwd_f32(&x[0, 0, 0, 0], N, C, H, W, pool_h, pool_w, stride, pad,
                                     &out[0, 0, 0, 0], nt)
        else:
            rc = nnf_avgpool_fwd_f64(&x[0, 0, 0, 0], N, C, H, W, pool_h, pool_w, stride, pad,
                                     &out[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("avgpool_forward: invalid arguments")


def avgpool_backward(const floating[:, :, :, ::1] dout, floating[:, :, :, ::1] dx,
                     int64_t pool_h, int64_t pool_w, int64_t stride, int64_t pad,
                     int n_threads=1):
    """dx = dout / (pool_h*pool_w) spread over each window (overlaps add up)."""
    cdef int64_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, dout, "avgpool_backward")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * C * H * W == 0:
        return
    if dout.shape[2] * dout.shape[3] == 0:
        dx[...] = 0
        return
    with nogil:
        if floating is float:
            rc = nnf_avgpool_bwd_f32(&dout[0, 0, 0, 0], N, C, H, W, pool_h, pool_w, stride,
                                     pad, &dx[0, 0, 0, 0], nt)
        else:
            rc = nnf_avgpool_bwd_f64(&dout[0, 0, 0, 0], N, C, H, W, pool_h, pool_w, stride,
                                     pad, &dx[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("avgpool_backward: invalid arguments")


# ---- convolution epilogue (csrc/conv.c): rows (N*P, FN), NCHW planes (N, FN, P) ----------

def conv_bias_nchw(const floating[:, ::1] rows, const floating[::1] b,
                   floating[:, :, ::1] out, int n_threads=1):
    """out[n, f, p] = rows[n*P + p, f] + b[f]."""
    cdef int64_t N = out.shape[0], FN = out.shape[1], P = out.shape[2]
    if rows.shape[0] != N * P or rows.shape[1] != FN or b.shape[0] != FN:
        raise ValueError(f"conv_bias_nchw: rows must be ({N * P}, {FN}) and b ({FN},) for out "
                         f"({N}, {FN}, {P}), got ({rows.shape[0]}, {rows.shape[1]}) and "
                         f"({b.shape[0]},)")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * FN * P == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_conv_bias_nchw_f32(&rows[0, 0], &b[0], N, FN, P, &out[0, 0, 0], nt)
        else:
            rc = nnf_conv_bias_nchw_f64(&rows[0, 0], &b[0], N, FN, P, &out[0, 0, 0], nt)
    if rc != 0:
        raise ValueError("conv_bias_nchw: invalid arguments")


cdef inline int _check_db(int64_t N, int64_t FN, object db, double[:, ::1] partial,
                          str what) except -1:
    if db.shape[0] != FN or partial.shape[0] != N or partial.shape[1] != FN:
        raise ValueError(f"{what}: db must be ({FN},) and partial ({N}, {FN}), got "
                         f"({db.shape[0]},) and ({partial.shape[0]}, {partial.shape[1]})")
    return 0


def conv_bwd_rows_db(const floating[:, :, ::1] dout, floating[:, ::1] rows, floating[::1] db,
                     double[:, ::1] partial, int n_threads=1):
    """rows[n*P + p, f] = dout[n, f, p]; db[f] = sum of dout[:, f, :] (in double)."""
    cdef int64_t N = dout.shape[0], FN = dout.shape[1], P = dout.shape[2]
    if rows.shape[0] != N * P or rows.shape[1] != FN:
        raise ValueError(f"conv_bwd_rows_db: rows must be ({N * P}, {FN}), got "
                         f"({rows.shape[0]}, {rows.shape[1]})")
    _check_db(N, FN, db, partial, "conv_bwd_rows_db")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if FN == 0:
        return
    if N * P == 0:
        db[:] = 0
        return
    with nogil:
        if floating is float:
            rc = nnf_conv_bwd_rows_db_f32(&dout[0, 0, 0], N, FN, P, &rows[0, 0], &db[0],
                                          &partial[0, 0], nt)
        else:
            rc = nnf_conv_bwd_rows_db_f64(&dout[0, 0, 0], N, FN, P, &rows[0, 0], &db[0],
                                          &partial[0, 0], nt)
    if rc != 0:
        raise ValueError("conv_bwd_rows_db: invalid arguments")


def conv_db(const floating[:, :, ::1] dout, floating[::1] db, double[:, ::1] partial,
            int n_threads=1):
    """db[f] = sum of dout[:, f, :] (in double), without the row layout."""
    cdef int64_t N = dout.shape[0], FN = dout.shape[1], P = dout.shape[2]
    _check_db(N, FN, db, partial, "conv_db")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if FN == 0:
        return
    if N * P == 0:
        db[:] = 0
        return
    with nogil:
        if floating is float:
            rc = nnf_conv_bwd_rows_db_f32(&dout[0, 0, 0], N, FN, P, NULL, &db[0],
                                          &partial[0, 0], nt)
        else:
            rc = nnf_conv_bwd_rows_db_f64(&dout[0, 0, 0], N, FN, P, NULL, &db[0],
                                          &partial[0, 0], nt)
    if rc != 0:
        raise ValueError("conv_db: invalid arguments")
