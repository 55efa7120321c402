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
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS,
                            PyBUF_FORMAT, PyBUF_WRITABLE, PyBUF_RECORDS_RO)
from libc.stdint cimport int32_t, int64_t, uint8_t, INT32_MAX
from libc.stdlib cimport malloc, free

cdef extern from "threads.h":
    int nnf_have_openmp() nogil
    int nnf_max_threads() nogil

cdef extern from "im2col.h":
    int nnf_im2col_planar_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                              float *colp, int n_threads) nogil
    int nnf_im2col_planar_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                              double *colp, int n_threads) nogil
    int nnf_col2im_planar_f32(const float *colp, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                              float *x, int n_threads) nogil
    int nnf_col2im_planar_f64(const double *colp, int64_t N, int64_t C, int64_t H, int64_t W,
                              int64_t FH, int64_t FW, int64_t stride, int64_t pad,
                              double *x, int n_threads) nogil
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

cdef extern from "isa.h":
    int nnf_cpu_isa() nogil
    int nnf_isa_select(int level) nogil
    int nnf_isa_force(int level) nogil
    int nnf_isa_selected() nogil
    int nnf_isa_family_level(const char *family) nogil

cdef extern from "dconv.h":
    int nnf_dconv_isa() nogil
    int nnf_dconv_built() nogil
    int64_t nnf_dconv_scratch(int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH,
                              int64_t KW, int64_t ph, int64_t pw) nogil
    int nnf_dconv_fwd_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                          const float *w, int64_t F, int64_t KH, int64_t KW, int64_t ph,
                          int64_t pw, const float *bias, float *out, uint8_t *relu_mask,
                          float *scratch, int n_threads, int isa) nogil
    int nnf_dconv_fwd_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                          const double *w, int64_t F, int64_t KH, int64_t KW, int64_t ph,
                          int64_t pw, const double *bias, double *out, uint8_t *relu_mask,
                          double *scratch, int n_threads, int isa) nogil
    int nnf_dconv_dw_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                         const float *dout, int64_t F, int64_t KH, int64_t KW, int64_t ph,
                         int64_t pw, float *dw, float *db, float *scratch, int n_threads,
                         int isa) nogil
    int nnf_dconv_dw_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                         const double *dout, int64_t F, int64_t KH, int64_t KW, int64_t ph,
                         int64_t pw, double *dw, double *db, double *scratch, int n_threads,
                         int isa) nogil

cdef extern from "bconv.h":
    int64_t nnf_bconv_fwd_scratch(int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH,
                                  int64_t KW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                  int n_threads, int tbytes) nogil
    int64_t nnf_bconv_dw_scratch(int64_t N, int64_t C, int64_t H, int64_t W, int64_t F,
                                 int64_t KH, int64_t KW, int64_t sh, int64_t sw, int64_t ph,
                                 int64_t pw, int n_threads, int tbytes) nogil
    int nnf_bconv_fwd_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                          const float *w, int64_t F, int64_t KH, int64_t KW, int64_t sh,
                          int64_t sw, int64_t ph, int64_t pw, const float *bias, float *out,
                          uint8_t *relu_mask, float *scratch, int n_threads, int isa) nogil
    int nnf_bconv_fwd_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                          const double *w, int64_t F, int64_t KH, int64_t KW, int64_t sh,
                          int64_t sw, int64_t ph, int64_t pw, const double *bias, double *out,
                          uint8_t *relu_mask, double *scratch, int n_threads, int isa) nogil
    int nnf_bconv_dw_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                         const float *dout, int64_t F, int64_t KH, int64_t KW, int64_t sh,
                         int64_t sw, int64_t ph, int64_t pw, float *dw, float *db,
                         float *scratch, int n_threads, int isa) nogil
    int nnf_bconv_dw_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                         const double *dout, int64_t F, int64_t KH, int64_t KW, int64_t sh,
                         int64_t sw, int64_t ph, int64_t pw, double *dw, double *db,
                         double *scratch, int n_threads, int isa) nogil

cdef extern from "pool.h":
    int nnf_maxpool_fwd_f32(const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            float *out, int32_t *argmax, int n_threads) nogil
    int nnf_maxpool_fwd_f64(const double *x, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, int64_t stride, int64_t pad,
                            double *out, int32_t *argmax, int n_threads) nogil
    int nnf_maxpool_bwd_f32(const float *dout, const int32_t *argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t PH, int64_t PW, int64_t stride,
                            int64_t pad, const uint8_t *relu_mask, float *dx,
                            int n_threads) nogil
    int nnf_maxpool_bwd_f64(const double *dout, const int32_t *argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t PH, int64_t PW, int64_t stride,
                            int64_t pad, const uint8_t *relu_mask, double *dx,
                            int n_threads) nogil
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
    int nnf_conv_bias_planar_f32(float *out, const float *b, int64_t N, int64_t FN, int64_t P,
                                 int n_threads) nogil
    int nnf_conv_bias_planar_f64(double *out, const double *b, int64_t N, int64_t FN, int64_t P,
                                 int n_threads) nogil
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


import os as _os

# More threads than this buys nothing; tens of thousands exhaust the process's thread
# limit and libgomp then crashes (found by fuzzing n_threads): larger counts are clamped.
cdef int _MAX_THREADS = max(256, _os.cpu_count() or 1)


cdef inline int _threads(int n_threads) except -1:
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return n_threads if n_threads <= _MAX_THREADS else _MAX_THREADS


def im2col(const floating[:, :, :, ::1] x not None, int64_t filter_h, int64_t filter_w,
           int64_t stride, int64_t pad, floating[:, ::1] out not None, int n_threads=1):
    """Unfold x (N, C, H, W) into out (N*OH*OW, C*FH*FW); rows (n, oh, ow), columns (c, i, j)."""
    cdef int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int64_t OH = _out_size(H, filter_h, stride, pad, "im2col")
    cdef int64_t OW = _out_size(W, filter_w, stride, pad, "im2col")
    # sizes compared as Python ints: an int64 product could wrap around and match
    rows, cols = (<object>N) * OH * OW, (<object>C) * filter_h * filter_w
    if out.shape[0] != rows or out.shape[1] != cols:
        raise ValueError(
            f"im2col: out must have shape ({rows}, {cols}), "
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


def col2im(const floating[:, ::1] col not None, floating[:, :, :, ::1] out not None,
           int64_t filter_h, int64_t filter_w, int64_t stride, int64_t pad, int n_threads=1):
    """Fold col (N*OH*OW, C*FH*FW) back into out (N, C, H, W), summing overlaps (adjoint of im2col)."""
    cdef int64_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef int64_t OH = _out_size(H, filter_h, stride, pad, "col2im")
    cdef int64_t OW = _out_size(W, filter_w, stride, pad, "col2im")
    rows, cols = (<object>N) * OH * OW, (<object>C) * filter_h * filter_w  # exact (Python ints)
    if col.shape[0] != rows or col.shape[1] != cols:
        raise ValueError(
            f"col2im: col must have shape ({rows}, {cols}) for "
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


cdef inline int _check_planar(int64_t N, int64_t C, int64_t H, int64_t W, int64_t filter_h,
                              int64_t filter_w, int64_t stride, int64_t pad, object colp,
                              str what) except -1:
    """Check colp (N, C*FH*FW, OH*OW) against the geometry of x (N, C, H, W)."""
    cdef int64_t OH = _out_size(H, filter_h, stride, pad, what)
    cdef int64_t OW = _out_size(W, filter_w, stride, pad, what)
    want = (N, (<object>C) * filter_h * filter_w, (<object>OH) * OW)  # exact (Python ints)
    got = tuple(colp.shape[:3])
    if got != want:
        raise ValueError(f"{what}: the columns must have shape {want} for x "
                         f"({N}, {C}, {H}, {W}), got {got}")
    return 0


def im2col_planar(const floating[:, :, :, ::1] x not None, int64_t filter_h, int64_t filter_w,
                  int64_t stride, int64_t pad, floating[:, :, ::1] out not None,
                  int n_threads=1):
    """Unfold x (N, C, H, W) into out (N, C*FH*FW, OH*OW): image n's columns as a (K, P) matrix."""
    cdef int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check_planar(N, C, H, W, filter_h, filter_w, stride, pad, out, "im2col_planar")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if out.shape[0] == 0 or out.shape[1] == 0 or out.shape[2] == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_im2col_planar_f32(&x[0, 0, 0, 0], N, C, H, W, filter_h, filter_w, stride,
                                       pad, &out[0, 0, 0], nt)
        else:
            rc = nnf_im2col_planar_f64(&x[0, 0, 0, 0], N, C, H, W, filter_h, filter_w, stride,
                                       pad, &out[0, 0, 0], nt)
    if rc != 0:
        raise ValueError("im2col_planar: invalid arguments")


def col2im_planar(const floating[:, :, ::1] colp not None, floating[:, :, :, ::1] out not None,
                  int64_t filter_h, int64_t filter_w, int64_t stride, int64_t pad,
                  int n_threads=1):
    """Fold colp (N, C*FH*FW, OH*OW) back into out (N, C, H, W), summing overlaps."""
    cdef int64_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    _check_planar(N, C, H, W, filter_h, filter_w, stride, pad, colp, "col2im_planar")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * C * H * W == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_col2im_planar_f32(&colp[0, 0, 0], N, C, H, W, filter_h, filter_w, stride,
                                       pad, &out[0, 0, 0, 0], nt)
        else:
            rc = nnf_col2im_planar_f64(&colp[0, 0, 0], N, C, H, W, filter_h, filter_w, stride,
                                       pad, &out[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("col2im_planar: invalid arguments")


# ---- direct stride-1 convolution (csrc/dconv.c) -------------------------------------------

_ISA_NAMES = ("baseline", "avx2", "avx512")


def dconv_isa():
    """The vector code the direct convolution runs here: "baseline", "avx2" or "avx512"."""
    return _ISA_NAMES[nnf_dconv_isa()]


def cpu_isa():
    """The best build of the element-wise families (eltwise, batchnorm, softmax_xent, pool,
    optim, affine) this CPU and build support: "baseline", "avx2" or "avx512"."""
    return _ISA_NAMES[nnf_cpu_isa()]


def isa_select(isa=None, exact=False):
    """Point every element-wise family at one build (None: the best supported; a level above
    the CPU's is refused) and return its name. Each family stays at or below the highest
    build it prefers (``isa_family``), unless ``exact``: then every family runs exactly that
    build (the tests run each). Every build gives the same bits. Not thread-safe: nnfast
    calls it once at import (tests switch it)."""
    cdef int level = -1
    if isa is not None:
        if isa not in _ISA_NAMES:
            raise ValueError(f"isa must be None or one of {_ISA_NAMES}, got {isa!r}")
        level = _ISA_NAMES.index(isa)
        if level > nnf_cpu_isa():
            raise ValueError(f"isa {isa!r} is not supported by this CPU or build "
                             f"(best: {_ISA_NAMES[nnf_cpu_isa()]!r})")
    return _ISA_NAMES[nnf_isa_force(level) if exact else nnf_isa_select(level)]


def isa_selected():
    """The level the element-wise families were last pointed at (see isa_family)."""
    return _ISA_NAMES[nnf_isa_selected()]


def isa_family(str family):
    """The build one element-wise family runs now: "baseline", "avx2" or "avx512"."""
    cdef bytes name = family.encode()
    cdef int level = nnf_isa_family_level(name)
    if level < 0:
        raise ValueError(f"isa_family: unknown family {family!r}; one of eltwise, batchnorm, "
                         f"softmax_xent, pool, optim, affine")
    return _ISA_NAMES[level]


# At load: the best build (nnfast._dispatch then applies the NNFAST_ISA cap, once).
nnf_isa_select(-1)


def dconv_built():
    """True when the direct convolutions (dconv_*, bconv_*) are compiled in (GCC/clang)."""
    return nnf_dconv_built() != 0


cdef inline int _isa_level(object isa) except -2:
    if isa is None:
        return -1
    if isa not in _ISA_NAMES:
        raise ValueError(f"isa must be None or one of {_ISA_NAMES}, got {isa!r}")
    cdef int level = _ISA_NAMES.index(isa)
    if level > nnf_dconv_isa():
        raise ValueError(f"isa {isa!r} is not supported by this CPU or build")
    return level


def dconv_scratch_size(int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW,
                       int64_t ph, int64_t pw, int n_threads=1):
    """Elements of scratch dconv_forward/dconv_dw need for this geometry and thread count."""
    cdef int64_t per = nnf_dconv_scratch(C, H, W, F, KH, KW, ph, pw)
    if per < 0:
        raise ValueError(f"dconv: invalid geometry C={C} H={H} W={W} F={F} KH={KH} KW={KW} "
                         f"pad=({ph}, {pw})")
    return per * _threads(n_threads)


cdef inline int _dconv_check(object x, object w, object big, object ph, object pw,
                             object scratch, int nt, str what, str big_name) except -1:
    """x (N, C, H, W), w (F, C, KH, KW) and the (N, F, OH, OW) array big must agree.
    Sizes are compared as Python ints: int64 arithmetic on a huge pad would wrap around."""
    N, C, H, W = x.shape[:4]
    F, Cw, KH, KW = w.shape[:4]
    if Cw != C:
        raise ValueError(f"{what}: w must have {C} input channels, got shape {tuple(w.shape[:4])}")
    if ph < 0 or pw < 0 or KH > H + 2 * ph or KW > W + 2 * pw:
        raise ValueError(f"{what}: the filter ({KH}, {KW}) does not fit the padded input "
                         f"({H} + 2*{ph}, {W} + 2*{pw})")
    want = (N, F, H + 2 * ph - KH + 1, W + 2 * pw - KW + 1)
    if tuple(big.shape[:4]) != want:
        raise ValueError(f"{what}: {big_name} must have shape {want}, got {tuple(big.shape[:4])}")
    need = dconv_scratch_size(C, H, W, F, KH, KW, ph, pw, nt)
    if scratch.shape[0] < need:
        raise ValueError(f"{what}: scratch must hold {need} elements, got {scratch.shape[0]}")
    return 0


def dconv_forward(const floating[:, :, :, ::1] x not None, const floating[:, :, :, ::1] w not None,
                  const floating[::1] bias, int64_t ph, int64_t pw,
                  floating[:, :, :, ::1] out not None, floating[::1] scratch not None,
                  int n_threads=1, isa=None, uint8_t[:, :, :, ::1] relu_mask=None):
    """out = the stride-1 convolution of x (N, C, H, W) by w (F, C, KH, KW), zero padding
    (ph, pw), + bias (F,) unless bias is None. scratch: dconv_scratch_size(...) elements.
    With relu_mask (out's shape, uint8): a ReLU in the same pass, mask = (value <= 0)."""
    cdef int nt = _threads(n_threads)
    cdef int level = _isa_level(isa)
    if bias is not None and bias.shape[0] != w.shape[0]:
        raise ValueError(f"dconv_forward: bias must be ({w.shape[0]},), got ({bias.shape[0]},)")
    cdef uint8_t *m = NULL
    if relu_mask is not None:
        want = (out.shape[0], out.shape[1], out.shape[2], out.shape[3])
        got = (relu_mask.shape[0], relu_mask.shape[1], relu_mask.shape[2], relu_mask.shape[3])
        if got != want:
            raise ValueError(f"dconv_forward: relu_mask must have out's shape {want}, "
                             f"got {got}")
    _dconv_check(x, w, out, ph, pw, scratch, nt, "dconv_forward", "out")
    if x.shape[0] == 0 or w.shape[0] == 0:
        return
    if relu_mask is not None:
        m = &relu_mask[0, 0, 0, 0]
    cdef const floating *b = NULL
    if bias is not None:
        b = &bias[0]
    cdef int rc
    with nogil:
        if floating is float:
            rc = nnf_dconv_fwd_f32(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                   &w[0, 0, 0, 0], w.shape[0], w.shape[2], w.shape[3], ph, pw,
                                   b, &out[0, 0, 0, 0], m, &scratch[0], nt, level)
        else:
            rc = nnf_dconv_fwd_f64(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                   &w[0, 0, 0, 0], w.shape[0], w.shape[2], w.shape[3], ph, pw,
                                   b, &out[0, 0, 0, 0], m, &scratch[0], nt, level)
    if rc != 0:
        raise ValueError("dconv_forward: invalid arguments")


def dconv_dw(const floating[:, :, :, ::1] x not None, const floating[:, :, :, ::1] dout not None,
             int64_t ph, int64_t pw, floating[:, :, :, ::1] dw not None,
             floating[::1] scratch not None, int n_threads=1, isa=None,
             floating[::1] db=None):
    """dw (F, C, KH, KW) = the filter gradient of the stride-1 convolution for dout (N, F, OH, OW),
    and db (F,) = dout summed per filter, exactly as conv_db, unless db is None.
    Returns False (dw, db undefined) when x holds inf or NaN: the caller must use another
    method."""
    cdef int nt = _threads(n_threads)
    cdef int level = _isa_level(isa)
    _dconv_check(x, dw, dout, ph, pw, scratch, nt, "dconv_dw", "dout")
    cdef floating *b = NULL
    if db is not None:
        if db.shape[0] != dw.shape[0]:
            raise ValueError(f"dconv_dw: db must be ({dw.shape[0]},), got ({db.shape[0]},)")
        b = &db[0]
    if x.shape[0] == 0:
        dw[...] = 0
        if db is not None:
            db[...] = 0
        return True
    cdef int rc
    with nogil:
        if floating is float:
            rc = nnf_dconv_dw_f32(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                  &dout[0, 0, 0, 0], dw.shape[0], dw.shape[2], dw.shape[3], ph, pw,
                                  &dw[0, 0, 0, 0], b, &scratch[0], nt, level)
        else:
            rc = nnf_dconv_dw_f64(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                  &dout[0, 0, 0, 0], dw.shape[0], dw.shape[2], dw.shape[3], ph, pw,
                                  &dw[0, 0, 0, 0], b, &scratch[0], nt, level)
    if rc == 2:
        return False
    if rc != 0:
        raise ValueError("dconv_dw: invalid arguments")
    return True


# ---- channel-lane convolution (csrc/bconv.c): any stride, zero padding ------------------

cdef inline object _bconv_geometry(object x_shape, object w_shape, object strides,
                                   object pads, str what):
    """(OH, OW) of x (N, C, H, W) by w (F, C, KH, KW), compared as Python ints (int64
    arithmetic on a huge pad or stride would wrap around)."""
    N, C, H, W = x_shape
    F, Cw, KH, KW = w_shape
    sh, sw = strides
    ph, pw = pads
    if Cw != C:
        raise ValueError(f"{what}: w must have {C} input channels, got shape {tuple(w_shape)}")
    if sh < 1 or sw < 1:
        raise ValueError(f"{what}: strides must be >= 1, got ({sh}, {sw})")
    if ph < 0 or pw < 0 or KH > H + 2 * ph or KW > W + 2 * pw:
        raise ValueError(f"{what}: the filter ({KH}, {KW}) does not fit the padded input "
                         f"({H} + 2*{ph}, {W} + 2*{pw})")
    return (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1


def bconv_fwd_scratch_size(int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW,
                           int64_t sh, int64_t sw, int64_t ph, int64_t pw, int n_threads,
                           int itemsize):
    """Elements (of itemsize bytes) of scratch bconv_forward needs."""
    cdef int64_t n = nnf_bconv_fwd_scratch(C, H, W, F, KH, KW, sh, sw, ph, pw,
                                           _threads(n_threads), itemsize)
    if n < 0:
        raise ValueError(f"bconv: invalid geometry C={C} H={H} W={W} F={F} KH={KH} KW={KW} "
                         f"stride=({sh}, {sw}) pad=({ph}, {pw})")
    return n


def bconv_dw_scratch_size(int64_t N, int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH,
                          int64_t KW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          int n_threads, int itemsize):
    """Elements (of itemsize bytes) of scratch bconv_dw needs."""
    cdef int64_t n = nnf_bconv_dw_scratch(N, C, H, W, F, KH, KW, sh, sw, ph, pw,
                                          _threads(n_threads), itemsize)
    if n < 0:
        raise ValueError(f"bconv: invalid geometry N={N} C={C} H={H} W={W} F={F} KH={KH} "
                         f"KW={KW} stride=({sh}, {sw}) pad=({ph}, {pw})")
    return n


def bconv_forward(const floating[:, :, :, ::1] x not None, const floating[:, :, :, ::1] w not None,
                  const floating[::1] bias, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                  floating[:, :, :, ::1] out not None, floating[::1] scratch not None,
                  int n_threads=1, isa=None, uint8_t[:, :, :, ::1] relu_mask=None):
    """out = the convolution of x (N, C, H, W) by w (F, C, KH, KW), strides (sh, sw), zero
    padding (ph, pw), + bias (F,) unless None; with relu_mask (out's shape, uint8) a ReLU
    in the same pass, mask = (value <= 0). scratch: bconv_fwd_scratch_size(...) elements."""
    cdef int nt = _threads(n_threads)
    cdef int level = _isa_level(isa)
    oh, ow = _bconv_geometry((x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (w.shape[0], w.shape[1], w.shape[2], w.shape[3]), (sh, sw), (ph, pw),
                             "bconv_forward")
    want = (x.shape[0], w.shape[0], oh, ow)
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != want:
        raise ValueError(f"bconv_forward: out must have shape {want}, got {(out.shape[0], out.shape[1], out.shape[2], out.shape[3])}")
    if bias is not None and bias.shape[0] != w.shape[0]:
        raise ValueError(f"bconv_forward: bias must be ({w.shape[0]},), got ({bias.shape[0]},)")
    cdef uint8_t *m = NULL
    if relu_mask is not None:
        if (relu_mask.shape[0], relu_mask.shape[1], relu_mask.shape[2], relu_mask.shape[3]) != want:
            raise ValueError(f"bconv_forward: relu_mask must have out's shape {want}, "
                             f"got {(relu_mask.shape[0], relu_mask.shape[1], relu_mask.shape[2], relu_mask.shape[3])}")
        m = &relu_mask[0, 0, 0, 0]
    if x.shape[0] == 0:
        return
    need = bconv_fwd_scratch_size(x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2],
                                  w.shape[3], sh, sw, ph, pw, nt, sizeof(floating))
    if scratch.shape[0] < need:
        raise ValueError(f"bconv_forward: scratch must hold {need} elements, got {scratch.shape[0]}")
    cdef const floating *b = NULL
    if bias is not None:
        b = &bias[0]
    cdef int rc
    with nogil:
        if floating is float:
            rc = nnf_bconv_fwd_f32(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                   &w[0, 0, 0, 0], w.shape[0], w.shape[2], w.shape[3], sh, sw,
                                   ph, pw, b, &out[0, 0, 0, 0], m, &scratch[0], nt, level)
        else:
            rc = nnf_bconv_fwd_f64(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                   &w[0, 0, 0, 0], w.shape[0], w.shape[2], w.shape[3], sh, sw,
                                   ph, pw, b, &out[0, 0, 0, 0], m, &scratch[0], nt, level)
    if rc != 0:
        raise ValueError("bconv_forward: invalid arguments")


def bconv_dw(const floating[:, :, :, ::1] x not None, const floating[:, :, :, ::1] dout not None,
             int64_t sh, int64_t sw, int64_t ph, int64_t pw, floating[:, :, :, ::1] dw not None,
             floating[::1] scratch not None, int n_threads=1, isa=None, floating[::1] db=None):
    """dw (F, C, KH, KW) = the filter gradient of that convolution for dout (N, F, OH, OW),
    and db (F,) = dout summed per filter (the bits of conv_db) unless db is None."""
    cdef int nt = _threads(n_threads)
    cdef int level = _isa_level(isa)
    oh, ow = _bconv_geometry((x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (dw.shape[0], dw.shape[1], dw.shape[2], dw.shape[3]), (sh, sw), (ph, pw),
                             "bconv_dw")
    want = (x.shape[0], dw.shape[0], oh, ow)
    if (dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3]) != want:
        raise ValueError(f"bconv_dw: dout must have shape {want}, got {(dout.shape[0], dout.shape[1], dout.shape[2], dout.shape[3])}")
    cdef floating *b = NULL
    if db is not None:
        if db.shape[0] != dw.shape[0]:
            raise ValueError(f"bconv_dw: db must be ({dw.shape[0]},), got ({db.shape[0]},)")
        b = &db[0]
    if x.shape[0] == 0:
        dw[...] = 0
        if db is not None:
            db[...] = 0
        return
    need = bconv_dw_scratch_size(x.shape[0], x.shape[1], x.shape[2], x.shape[3], dw.shape[0],
                                 dw.shape[2], dw.shape[3], sh, sw, ph, pw, nt, sizeof(floating))
    if scratch.shape[0] < need:
        raise ValueError(f"bconv_dw: scratch must hold {need} elements, got {scratch.shape[0]}")
    cdef int rc
    with nogil:
        if floating is float:
            rc = nnf_bconv_dw_f32(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                  &dout[0, 0, 0, 0], dw.shape[0], dw.shape[2], dw.shape[3], sh,
                                  sw, ph, pw, &dw[0, 0, 0, 0], b, &scratch[0], nt, level)
        else:
            rc = nnf_bconv_dw_f64(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                                  &dout[0, 0, 0, 0], dw.shape[0], dw.shape[2], dw.shape[3], sh,
                                  sw, ph, pw, &dw[0, 0, 0, 0], b, &scratch[0], nt, level)
    if rc != 0:
        raise ValueError("bconv_dw: invalid arguments")


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


def maxpool_forward(const floating[:, :, :, ::1] x not None, int64_t pool_h, int64_t pool_w,
                    int64_t stride, int64_t pad, floating[:, :, :, ::1] out not None,
                    int32_t[:, :, :, ::1] argmax not None, int n_threads=1):
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


def maxpool_backward(const floating[:, :, :, ::1] dout not None,
                     const int32_t[:, :, :, ::1] argmax not None,
                     floating[:, :, :, ::1] dx not None, int64_t pool_h, int64_t pool_w,
                     int64_t stride, int64_t pad, int n_threads=1,
                     const uint8_t[:, :, :, ::1] relu_mask=None):
    """dx = dout scattered to the argmax of each window (overlaps add up); with relu_mask
    (dx's shape, uint8), then 0 where it is set (the backward of a ReLU before the pooling)."""
    cdef int64_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, dout, "maxpool_backward")
    _pool_check(N, C, H, W, pool_h, pool_w, stride, pad, argmax, "maxpool_backward")
    cdef const uint8_t *m = NULL
    if relu_mask is not None:
        got = (relu_mask.shape[0], relu_mask.shape[1], relu_mask.shape[2], relu_mask.shape[3])
        if got != (N, C, H, W):
            raise ValueError(f"maxpool_backward: relu_mask must have dx's shape "
                             f"{(N, C, H, W)}, got {got}")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * C * H * W == 0:
        return
    if dout.shape[2] * dout.shape[3] == 0:
        dx[...] = 0
        return
    if relu_mask is not None:
        m = &relu_mask[0, 0, 0, 0]
    with nogil:
        if floating is float:
            rc = nnf_maxpool_bwd_f32(&dout[0, 0, 0, 0], &argmax[0, 0, 0, 0], N, C, H, W,
                                     pool_h, pool_w, stride, pad, m, &dx[0, 0, 0, 0], nt)
        else:
            rc = nnf_maxpool_bwd_f64(&dout[0, 0, 0, 0], &argmax[0, 0, 0, 0], N, C, H, W,
                                     pool_h, pool_w, stride, pad, m, &dx[0, 0, 0, 0], nt)
    if rc != 0:
        raise ValueError("maxpool_backward: invalid arguments")


def avgpool_forward(const floating[:, :, :, ::1] x not None, int64_t pool_h, int64_t pool_w,
                    int64_t stride, int64_t pad, floating[:, :, :, ::1] out not None,
                    int n_threads=1):
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


def avgpool_backward(const floating[:, :, :, ::1] dout not None,
                     floating[:, :, :, ::1] dx not None, int64_t pool_h, int64_t pool_w,
                     int64_t stride, int64_t pad, int n_threads=1):
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

def conv_bias_planar(floating[:, :, ::1] out not None, const floating[::1] b not None,
                     int n_threads=1):
    """out[n, f, p] += b[f]."""
    cdef int64_t N = out.shape[0], FN = out.shape[1], P = out.shape[2]
    if b.shape[0] != FN:
        raise ValueError(f"conv_bias_planar: b must be ({FN},) for out ({N}, {FN}, {P}), "
                         f"got ({b.shape[0]},)")
    cdef int nt = _threads(n_threads)
    cdef int rc
    if N * FN * P == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_conv_bias_planar_f32(&out[0, 0, 0], &b[0], N, FN, P, nt)
        else:
            rc = nnf_conv_bias_planar_f64(&out[0, 0, 0], &b[0], N, FN, P, nt)
    if rc != 0:
        raise ValueError("conv_bias_planar: invalid arguments")


def conv_bias_nchw(const floating[:, ::1] rows not None, const floating[::1] b not None,
                   floating[:, :, ::1] out not None, int n_threads=1):
    """out[n, f, p] = rows[n*P + p, f] + b[f]."""
    cdef int64_t N = out.shape[0], FN = out.shape[1], P = out.shape[2]
    if rows.shape[0] != (<object>N) * P or rows.shape[1] != FN or b.shape[0] != FN:
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


def conv_bwd_rows_db(const floating[:, :, ::1] dout not None, floating[:, ::1] rows not None,
                     floating[::1] db not None, double[:, ::1] partial not None, int n_threads=1):
    """rows[n*P + p, f] = dout[n, f, p]; db[f] = sum of dout[:, f, :] (in double)."""
    cdef int64_t N = dout.shape[0], FN = dout.shape[1], P = dout.shape[2]
    if rows.shape[0] != (<object>N) * P or rows.shape[1] != FN:
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


def conv_db(const floating[:, :, ::1] dout not None, floating[::1] db not None,
            double[:, ::1] partial not None, int n_threads=1):
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

# ---- dense ops: element-wise, affine bias, softmax + cross-entropy, batchnorm, optimizers ----
# Arrays arrive flattened (1-D) or as (rows, cols); masks as uint8 views of NumPy bool arrays.


import numpy as np

cdef extern from "eltwise.h":
    void nnf_relu_f32(const float *x, int64_t n, float *out, int nt) nogil
    void nnf_relu_f64(const double *x, int64_t n, double *out, int nt) nogil
    void nnf_relu_fwd_f32(const float *x, int64_t n, float *out, uint8_t *mask, int nt) nogil
    void nnf_relu_fwd_f64(const double *x, int64_t n, double *out, uint8_t *mask, int nt) nogil
    void nnf_relu_bwd_f32(const float *dout, const uint8_t *mask, int64_t n, float *dx, int nt) nogil
    void nnf_relu_bwd_f64(const double *dout, const uint8_t *mask, int64_t n, double *dx, int nt) nogil
    void nnf_positive_f32(const float *x, int64_t n, int inclusive, float *out, int nt) nogil
    void nnf_positive_f64(const double *x, int64_t n, int inclusive, double *out, int nt) nogil
    void nnf_step_f32(const float *x, int64_t n, int64_t *out, int nt) nogil
    void nnf_step_f64(const double *x, int64_t n, int64_t *out, int nt) nogil
    void nnf_neg_abs_f32(const float *x, int64_t n, float *out, int nt) nogil
    void nnf_neg_abs_f64(const double *x, int64_t n, double *out, int nt) nogil
    void nnf_sigmoid_finish_f32(const float *x, const float *e, int64_t n, int derivative,
                                float *out, int nt) nogil
    void nnf_sigmoid_finish_f64(const double *x, const double *e, int64_t n, int derivative,
                                double *out, int nt) nogil
    void nnf_sigmoid_bwd_f32(const float *dout, const float *y, int64_t n, float *dx, int nt) nogil
    void nnf_sigmoid_bwd_f64(const double *dout, const double *y, int64_t n, double *dx, int nt) nogil
    void nnf_mul_mask_f32(const float *a, const uint8_t *mask, int64_t n, float *out, int nt) nogil
    void nnf_mul_mask_f64(const double *a, const uint8_t *mask, int64_t n, double *out, int nt) nogil
    void nnf_scale_f32(const float *a, double s, int64_t n, float *out, int nt) nogil
    void nnf_scale_f64(const double *a, double s, int64_t n, double *out, int nt) nogil

cdef extern from "affine.h":
    void nnf_bias_add_f32(float *out, const float *b, int64_t rows, int64_t cols, int nt) nogil
    void nnf_bias_add_f64(double *out, const double *b, int64_t rows, int64_t cols, int nt) nogil

cdef extern from "softmax_xent.h":
    void nnf_softmax_f32(const float *x, int64_t rows, int64_t cols, float *y, int nt) nogil
    void nnf_softmax_f64(const double *x, int64_t rows, int64_t cols, double *y, int nt) nogil
    int nnf_softmax_xent_f32(const float *x, int64_t rows, int64_t cols, const int64_t *labels,
                             const float *t, float *y, float *dx, double *row_loss,
                             double *loss, int nt) nogil
    int nnf_softmax_xent_f64(const double *x, int64_t rows, int64_t cols,
                             const int64_t *labels, const double *t, double *y, double *dx,
                             double *row_loss, double *loss, int nt) nogil
    int nnf_softmax_xent_bwd_f32(const float *y, int64_t rows, int64_t cols,
                                 const int64_t *labels, const float *t, float *dx, int nt) nogil
    int nnf_softmax_xent_bwd_f64(const double *y, int64_t rows, int64_t cols,
                                 const int64_t *labels, const double *t, double *dx, int nt) nogil
    int nnf_cross_entropy_f32(const float *y, int64_t rows, int64_t cols,
                              const int64_t *labels, double *loss) nogil
    int nnf_cross_entropy_f64(const double *y, int64_t rows, int64_t cols,
                              const int64_t *labels, double *loss) nogil

cdef extern from "batchnorm.h":
    int nnf_bn_fwd_train_f32(const float *x, int64_t N, int64_t C, int64_t I,
                             const float *gamma, const float *beta, const float *rm_in,
                             const float *rv_in, double momentum, float *out, float *xc,
                             float *xn, float *std, float *rm_out, float *rv_out, int nt) nogil
    int nnf_bn_fwd_train_f64(const double *x, int64_t N, int64_t C, int64_t I,
                             const double *gamma, const double *beta, const double *rm_in,
                             const double *rv_in, double momentum, double *out, double *xc,
                             double *xn, double *std, double *rm_out, double *rv_out, int nt) nogil
    int nnf_bn_fwd_test_f32(const float *x, int64_t N, int64_t C, int64_t I,
                            const float *gamma, const float *beta, const float *rm,
                            const float *rv, float *out, int nt) nogil
    int nnf_bn_fwd_test_f64(const double *x, int64_t N, int64_t C, int64_t I,
                            const double *gamma, const double *beta, const double *rm,
                            const double *rv, double *out, int nt) nogil
    int nnf_bn_bwd_f32(const float *dout, const float *xc, const float *xn, const float *std,
                       const float *gamma, int64_t N, int64_t C, int64_t I, float *dx,
                       float *dgamma, float *dbeta, int nt) nogil
    int nnf_bn_bwd_f64(const double *dout, const double *xc, const double *xn, const double *std,
                       const double *gamma, int64_t N, int64_t C, int64_t I, double *dx,
                       double *dgamma, double *dbeta, int nt) nogil

cdef extern from "optim.h":
    void nnf_sgd_f32(float *p, const float *g, int64_t n, double lr, int nt) nogil
    void nnf_sgd_f64(double *p, const double *g, int64_t n, double lr, int nt) nogil
    void nnf_momentum_f32(float *p, const float *g, float *v, int64_t n, double lr,
                          double momentum, int nt) nogil
    void nnf_momentum_f64(double *p, const double *g, double *v, int64_t n, double lr,
                          double momentum, int nt) nogil
    void nnf_nesterov_f32(float *p, const float *g, float *v, int64_t n, double lr,
                          double momentum, int nt) nogil
    void nnf_nesterov_f64(double *p, const double *g, double *v, int64_t n, double lr,
                          double momentum, int nt) nogil
    void nnf_adagrad_f32(float *p, const float *g, float *h, int64_t n, double lr, int nt) nogil
    void nnf_adagrad_f64(double *p, const double *g, double *h, int64_t n, double lr, int nt) nogil
    void nnf_rmsprop_f32(float *p, const float *g, float *h, int64_t n, double lr, double rho,
                         int nt) nogil
    void nnf_rmsprop_f64(double *p, const double *g, double *h, int64_t n, double lr, double rho,
                         int nt) nogil
    void nnf_adam_f32(float *p, const float *g, float *m, float *v, int64_t n, double lr_t,
                      double beta1, double beta2, int nt) nogil
    void nnf_adam_f64(double *p, const double *g, double *m, double *v, int64_t n, double lr_t,
                      double beta1, double beta2, int nt) nogil


cdef inline int _same_len(int64_t n, int64_t m, str where, str name) except -1:
    if m != n:
        raise ValueError(f"{where}: {name} must have {n} elements, got {m}")
    return 0


def relu(const floating[::1] x not None, floating[::1] out not None, int n_threads=1):
    """out = max(0, x) as np.maximum(0, x) (flat arrays)."""
    cdef int64_t n = x.shape[0]
    _same_len(n, out.shape[0], "relu", "out")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_relu_f32(&x[0], n, &out[0], nt)
        else:
            nnf_relu_f64(&x[0], n, &out[0], nt)


def relu_forward(const floating[::1] x not None, floating[::1] out not None,
                 uint8_t[::1] mask not None, int n_threads=1):
    """mask = x <= 0; out = 0 where mask else x (flat arrays)."""
    cdef int64_t n = x.shape[0]
    _same_len(n, out.shape[0], "relu_forward", "out")
    _same_len(n, mask.shape[0], "relu_forward", "mask")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_relu_fwd_f32(&x[0], n, &out[0], &mask[0], nt)
        else:
            nnf_relu_fwd_f64(&x[0], n, &out[0], &mask[0], nt)


def relu_backward(const floating[::1] dout not None, const uint8_t[::1] mask not None,
                  floating[::1] dx not None, int n_threads=1):
    """dx = 0 where mask else dout (flat arrays)."""
    cdef int64_t n = dout.shape[0]
    _same_len(n, mask.shape[0], "relu_backward", "mask")
    _same_len(n, dx.shape[0], "relu_backward", "dx")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_relu_bwd_f32(&dout[0], &mask[0], n, &dx[0], nt)
        else:
            nnf_relu_bwd_f64(&dout[0], &mask[0], n, &dx[0], nt)


def positive(const floating[::1] x not None, bint inclusive, floating[::1] out not None,
             int n_threads=1):
    """out = 1.0 where x > 0 (x >= 0 if inclusive) else 0.0 (flat arrays)."""
    cdef int64_t n = x.shape[0]
    _same_len(n, out.shape[0], "positive", "out")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_positive_f32(&x[0], n, inclusive, &out[0], nt)
        else:
            nnf_positive_f64(&x[0], n, inclusive, &out[0], nt)


def step(const floating[::1] x not None, int64_t[::1] out not None, int n_threads=1):
    """out = (x > 0) as int64 (flat arrays)."""
    cdef int64_t n = x.shape[0]
    _same_len(n, out.shape[0], "step", "out")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_step_f32(&x[0], n, &out[0], nt)
        else:
            nnf_step_f64(&x[0], n, &out[0], nt)


def sigmoid(const floating[::1] x not None, floating[::1] out not None, bint derivative=False,
            int n_threads=1):
    """out = sigmoid(x), or (1 - s)*s with s = sigmoid(x) if derivative (flat arrays).

    The reference's stable form; exp(-|x|) is NumPy's (computed in ``out`` in place).
    """
    cdef int64_t n = x.shape[0]
    _same_len(n, out.shape[0], "sigmoid", "out")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_neg_abs_f32(&x[0], n, &out[0], nt)
        else:
            nnf_neg_abs_f64(&x[0], n, &out[0], nt)
    arr = np.asarray(out)
    np.exp(arr, out=arr)
    with nogil:
        if floating is float:
            nnf_sigmoid_finish_f32(&x[0], &out[0], n, derivative, &out[0], nt)
        else:
            nnf_sigmoid_finish_f64(&x[0], &out[0], n, derivative, &out[0], nt)


def sigmoid_backward(const floating[::1] dout not None, const floating[::1] y not None,
                     floating[::1] dx not None, int n_threads=1):
    """dx = dout * (1 - y) * y (flat arrays)."""
    cdef int64_t n = dout.shape[0]
    _same_len(n, y.shape[0], "sigmoid_backward", "y")
    _same_len(n, dx.shape[0], "sigmoid_backward", "dx")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_sigmoid_bwd_f32(&dout[0], &y[0], n, &dx[0], nt)
        else:
            nnf_sigmoid_bwd_f64(&dout[0], &y[0], n, &dx[0], nt)


def mul_mask(const floating[::1] a not None, const uint8_t[::1] mask not None,
             floating[::1] out not None, int n_threads=1):
    """out = a * mask (flat arrays)."""
    cdef int64_t n = a.shape[0]
    _same_len(n, mask.shape[0], "mul_mask", "mask")
    _same_len(n, out.shape[0], "mul_mask", "out")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_mul_mask_f32(&a[0], &mask[0], n, &out[0], nt)
        else:
            nnf_mul_mask_f64(&a[0], &mask[0], n, &out[0], nt)


def scale(const floating[::1] a not None, double s, floating[::1] out not None, int n_threads=1):
    """out = a * s, s rounded to the array's dtype first (flat arrays)."""
    cdef int64_t n = a.shape[0]
    _same_len(n, out.shape[0], "scale", "out")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    with nogil:
        if floating is float:
            nnf_scale_f32(&a[0], s, n, &out[0], nt)
        else:
            nnf_scale_f64(&a[0], s, n, &out[0], nt)


def bias_add(floating[:, ::1] out not None, const floating[::1] b not None, int n_threads=1):
    """out[r, :] += b in place."""
    cdef int64_t rows = out.shape[0], cols = out.shape[1]
    _same_len(cols, b.shape[0], "bias_add", "b")
    cdef int nt = _threads(n_threads)
    if rows == 0 or cols == 0:
        return
    with nogil:
        if floating is float:
            nnf_bias_add_f32(&out[0, 0], &b[0], rows, cols, nt)
        else:
            nnf_bias_add_f64(&out[0, 0], &b[0], rows, cols, nt)


cdef inline int _same_2d(floating[:, ::1] a, int64_t rows, int64_t cols, str where,
                         str name) except -1:
    if a.shape[0] != rows or a.shape[1] != cols:
        raise ValueError(f"{where}: {name} must have shape ({rows}, {cols}), "
                         f"got ({a.shape[0]}, {a.shape[1]})")
    return 0


def softmax(const floating[:, ::1] x not None, floating[:, ::1] y not None, int n_threads=1):
    """y = softmax over each row of x."""
    cdef int64_t rows = x.shape[0], cols = x.shape[1]
    if y.shape[0] != rows or y.shape[1] != cols:
        raise ValueError(f"softmax: y must have shape ({rows}, {cols})")
    cdef int nt = _threads(n_threads)
    if rows == 0 or cols == 0:
        return
    with nogil:
        if floating is float:
            nnf_softmax_f32(&x[0, 0], rows, cols, &y[0, 0], nt)
        else:
            nnf_softmax_f64(&x[0, 0], rows, cols, &y[0, 0], nt)


def softmax_xent(const floating[:, ::1] x not None, const int64_t[::1] labels not None,
                 const floating[:, ::1] t, floating[:, ::1] y not None, floating[:, ::1] dx,
                 double[::1] row_loss not None, int n_threads=1):
    """y = softmax(x); return the mean cross-entropy loss; dx (if not None) the gradient.

    ``t`` (dense teacher for dx) and ``dx`` may be None. Labels out of range: ValueError
    (checked before anything is written).
    """
    cdef int64_t rows = x.shape[0], cols = x.shape[1]
    cdef int nt = _threads(n_threads)
    cdef double loss = 0.0
    cdef int rc
    cdef int64_t r
    cdef const floating *tp = NULL
    cdef floating *dxp = NULL
    if cols < 1 or rows < 1:
        raise ValueError(f"softmax_xent: x must have at least one row and one column, "
                         f"got ({rows}, {cols})")
    _same_len(rows, labels.shape[0], "softmax_xent", "labels")
    _same_len(rows, row_loss.shape[0], "softmax_xent", "row_loss")
    if y.shape[0] != rows or y.shape[1] != cols:
        raise ValueError(f"softmax_xent: y must have shape ({rows}, {cols})")
    if t is not None:
        if t.shape[0] != rows or t.shape[1] != cols:
            raise ValueError(f"softmax_xent: t must have shape ({rows}, {cols})")
        tp = &t[0, 0]
    if dx is not None:
        if dx.shape[0] != rows or dx.shape[1] != cols:
            raise ValueError(f"softmax_xent: dx must have shape ({rows}, {cols})")
        dxp = &dx[0, 0]
    for r in range(rows):  # refuse before writing anything (the C pass checks again)
        if labels[r] < 0 or labels[r] >= cols:
            raise ValueError(f"softmax_xent: labels must be in [0, {cols}), got {labels[r]}")
    with nogil:
        if floating is float:
            rc = nnf_softmax_xent_f32(&x[0, 0], rows, cols, &labels[0], tp, &y[0, 0], dxp,
                                      &row_loss[0], &loss, nt)
        else:
            rc = nnf_softmax_xent_f64(&x[0, 0], rows, cols, &labels[0], tp, &y[0, 0], dxp,
                                      &row_loss[0], &loss, nt)
    if rc != 0:
        raise ValueError(f"softmax_xent: labels must be in [0, {cols})")
    return loss


cdef inline int _buffer_kind(Py_buffer *v) noexcept:
    """1 float32, 2 float64, 3 int64 (native byte order), 0 anything else."""
    cdef const char *f = v.format
    if f == NULL:
        return 0
    if f[0] == b'@' or f[0] == b'=':
        f += 1
    if f[0] == 0 or f[1] != 0:
        return 0
    if f[0] == b'f' and v.itemsize == 4:
        return 1
    if f[0] == b'd' and v.itemsize == 8:
        return 2
    if (f[0] == b'l' or f[0] == b'q') and v.itemsize == 8:
        return 3
    return 0


cdef int _byte_span(object a, const char **lo, const char **hi) except -1:
    """The first and one-past-last byte an array's elements occupy (its strides followed)."""
    cdef Py_buffer v
    cdef Py_ssize_t k
    cdef const char *first
    cdef const char *last
    PyObject_GetBuffer(a, &v, PyBUF_RECORDS_RO)
    try:
        first = last = <const char *>v.buf
        for k in range(v.ndim):
            if v.shape[k] == 0:
                lo[0] = hi[0] = <const char *>v.buf
                return 0
            if v.strides[k] < 0:
                first += v.strides[k] * (v.shape[k] - 1)
            else:
                last += v.strides[k] * (v.shape[k] - 1)
        lo[0], hi[0] = first, last + v.itemsize
        return 0
    finally:
        PyBuffer_Release(&v)


def first_overlap(tuple outs, tuple ins):
    """(i, j): the first output ``outs[i]`` whose bytes may overlap ``(outs + ins)[j]``
    (j > i), or None; None entries are skipped. Bounds only (as numpy.may_share_memory),
    read through the buffer protocol: a fraction of a microsecond for a few arrays."""
    cdef Py_ssize_t n_out = len(outs), n = len(outs) + len(ins), i, j
    cdef const char *lo[16]
    cdef const char *hi[16]
    cdef int present[16]
    if n > 16:
        raise ValueError("first_overlap: at most 16 arrays")
    everything = outs + ins
    for j in range(n):
        present[j] = everything[j] is not None
        if present[j]:
            _byte_span(everything[j], &lo[j], &hi[j])
    for i in range(n_out):
        if not present[i] or lo[i] == hi[i]:
            continue
        for j in range(i + 1, n):
            if present[j] and lo[j] != hi[j] and lo[i] < hi[j] and lo[j] < hi[i]:
                return i, j
    return None


def softmax_xent_labels(object x, object labels, object dx, int n_threads=1):
    """The mean cross-entropy loss of softmax(x) against int64 ``labels``; dx written.

    The same C pass as ``softmax_xent`` (the softmax and the row losses go to scratch
    memory of its own), for the per-call cost of tiny inputs: the three arguments are
    read through the buffer protocol (no memoryview objects, no fused-type dispatch).
    x (N, C) float32/float64 and dx (N, C) of x's dtype, writeable; labels (N,) int64; all
    C-contiguous in native byte order. Labels out of range: ValueError, before anything
    is written."""
    cdef Py_buffer bx, bl, bd
    cdef int got_x = 0, got_l = 0, got_d = 0, kind, rc = 0
    cdef int64_t rows, cols, r
    cdef const int64_t *lp
    cdef size_t need, itemsize
    cdef double stack[512]
    cdef char *scratch = NULL
    cdef char *heap = NULL
    cdef double loss = 0.0
    cdef int nt = _threads(n_threads)
    try:
        PyObject_GetBuffer(x, &bx, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
        got_x = 1
        PyObject_GetBuffer(labels, &bl, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
        got_l = 1
        PyObject_GetBuffer(dx, &bd, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)
        got_d = 1
        kind = _buffer_kind(&bx)
        if bx.ndim != 2 or (kind != 1 and kind != 2):
            raise TypeError("softmax_xent_labels: x must be a 2-D float32 or float64 array")
        rows, cols = bx.shape[0], bx.shape[1]
        if rows < 1 or cols < 1:
            raise ValueError(f"softmax_xent_labels: x must have at least one row and one "
                             f"column, got ({rows}, {cols})")
        if bl.ndim != 1 or _buffer_kind(&bl) != 3 or bl.shape[0] != rows:
            raise ValueError(f"softmax_xent_labels: labels must be an int64 array of shape "
                             f"({rows},)")
        if bd.ndim != 2 or _buffer_kind(&bd) != kind or bd.shape[0] != rows \
                or bd.shape[1] != cols:
            raise ValueError(f"softmax_xent_labels: dx must be an array of x's dtype and "
                             f"shape ({rows}, {cols})")
        itemsize = bx.itemsize
        if (<char *>bd.buf < <char *>bx.buf + rows * cols * itemsize
                and <char *>bx.buf < <char *>bd.buf + rows * cols * itemsize) \
                or (<char *>bd.buf < <char *>bl.buf + rows * 8
                    and <char *>bl.buf < <char *>bd.buf + rows * cols * itemsize):
            raise ValueError("softmax_xent_labels: dx must not overlap x or labels")
        lp = <const int64_t *>bl.buf
        for r in range(rows):  # refuse before writing anything (the C pass checks again)
            if lp[r] < 0 or lp[r] >= cols:
                raise ValueError(f"softmax_xent_labels: labels must be in [0, {cols}), got "
                                 f"{lp[r]}")
        # scratch: the row losses (double), then y
        need = rows * 8 + rows * cols * itemsize
        if need <= sizeof(stack):
            scratch = <char *>stack
        else:
            heap = <char *>malloc(need)
            if heap == NULL:
                raise MemoryError()
            scratch = heap
        with nogil:
            if kind == 1:
                rc = nnf_softmax_xent_f32(<const float *>bx.buf, rows, cols, lp, NULL,
                                          <float *>(scratch + rows * 8), <float *>bd.buf,
                                          <double *>scratch, &loss, nt)
            else:
                rc = nnf_softmax_xent_f64(<const double *>bx.buf, rows, cols, lp, NULL,
                                          <double *>(scratch + rows * 8), <double *>bd.buf,
                                          <double *>scratch, &loss, nt)
        if rc != 0:
            raise ValueError(f"softmax_xent_labels: labels must be in [0, {cols})")
        return loss
    finally:
        free(heap)
        if got_d:
            PyBuffer_Release(&bd)
        if got_l:
            PyBuffer_Release(&bl)
        if got_x:
            PyBuffer_Release(&bx)


def softmax_xent_backward(const floating[:, ::1] y not None, const int64_t[::1] labels,
                          const floating[:, ::1] t, floating[:, ::1] dx not None, int n_threads=1):
    """dx = (y - t)/N with a dense teacher t, else y minus 1 at each label, /N (labels)."""
    cdef int64_t rows = y.shape[0], cols = y.shape[1]
    cdef int nt = _threads(n_threads)
    cdef int rc
    cdef const floating *tp = NULL
    cdef const int64_t *lp = NULL
    if cols < 1 or rows < 1:
        raise ValueError(f"softmax_xent_backward: y must have at least one row and one "
                         f"column, got ({rows}, {cols})")
    if dx.shape[0] != rows or dx.shape[1] != cols:
        raise ValueError(f"softmax_xent_backward: dx must have shape ({rows}, {cols})")
    if t is not None:
        if t.shape[0] != rows or t.shape[1] != cols:
            raise ValueError(f"softmax_xent_backward: t must have shape ({rows}, {cols})")
        tp = &t[0, 0]
    else:
        if labels is None:
            raise ValueError("softmax_xent_backward: give labels or a dense teacher t")
        _same_len(rows, labels.shape[0], "softmax_xent_backward", "labels")
        lp = &labels[0]
    with nogil:
        if floating is float:
            rc = nnf_softmax_xent_bwd_f32(&y[0, 0], rows, cols, lp, tp, &dx[0, 0], nt)
        else:
            rc = nnf_softmax_xent_bwd_f64(&y[0, 0], rows, cols, lp, tp, &dx[0, 0], nt)
    if rc != 0:
        raise ValueError(f"softmax_xent_backward: labels must be in [0, {cols})")


def cross_entropy(const floating[:, ::1] y not None, const int64_t[::1] labels not None):
    """-sum_r log(y[r, labels[r]] + 1e-7) / rows."""
    cdef int64_t rows = y.shape[0], cols = y.shape[1]
    cdef double loss = 0.0
    cdef int rc
    if cols < 1 or rows < 1:
        raise ValueError(f"cross_entropy: y must have at least one row and one column, "
                         f"got ({rows}, {cols})")
    _same_len(rows, labels.shape[0], "cross_entropy", "labels")
    with nogil:
        if floating is float:
            rc = nnf_cross_entropy_f32(&y[0, 0], rows, cols, &labels[0], &loss)
        else:
            rc = nnf_cross_entropy_f64(&y[0, 0], rows, cols, &labels[0], &loss)
    if rc != 0:
        raise ValueError(f"cross_entropy: labels must be in [0, {cols})")
    return loss


cdef inline int _bn_sizes(int64_t total, int64_t N, int64_t C, int64_t I, str where) except -1:
    # the product as Python ints: in int64 a huge N or I could wrap around to ``total``
    # (found by fuzzing: N = 4/5 mod 2**64, I = 5 passed and the kernel read far past x)
    if N < 0 or C < 0 or I < 1 or (<object>N) * C * I != total:
        raise ValueError(f"{where}: (N, C, I) = ({N}, {C}, {I}) does not match {total} elements")
    return 0


def bn_forward_train(const floating[::1] x not None, int64_t N, int64_t C, int64_t I,
                     const floating[::1] gamma not None, const floating[::1] beta not None,
                     const floating[::1] rm_in not None, const floating[::1] rv_in not None,
                     double momentum, floating[::1] out not None, floating[::1] xc not None,
                     floating[::1] xn, floating[::1] std not None,
                     floating[::1] rm_out not None, floating[::1] rv_out not None,
                     int n_threads=1):
    """Training forward of batch normalization on x viewed as (N, C, I), stats per channel.
    xn may be None (not stored: bn_backward forms xc/std again)."""
    cdef int64_t total = x.shape[0]
    _bn_sizes(total, N, C, I, "bn_forward_train")
    if N < 1:
        raise ValueError("bn_forward_train: need at least one sample")
    for arr, name in ((out, "out"), (xc, "xc")):
        _same_len(total, arr.shape[0], "bn_forward_train", name)
    if xn is not None:
        _same_len(total, xn.shape[0], "bn_forward_train", "xn")
    for arr, name in ((gamma, "gamma"), (beta, "beta"), (rm_in, "running_mean"),
                      (rv_in, "running_var"), (std, "std"), (rm_out, "rm_out"),
                      (rv_out, "rv_out")):
        _same_len(C, arr.shape[0], "bn_forward_train", name)
    cdef int nt = _threads(n_threads)
    cdef int rc
    if total == 0:
        return
    cdef floating *xnp = &xn[0] if xn is not None else NULL
    with nogil:
        if floating is float:
            rc = nnf_bn_fwd_train_f32(&x[0], N, C, I, &gamma[0], &beta[0], &rm_in[0],
                                      &rv_in[0], momentum, &out[0], &xc[0], xnp, &std[0],
                                      &rm_out[0], &rv_out[0], nt)
        else:
            rc = nnf_bn_fwd_train_f64(&x[0], N, C, I, &gamma[0], &beta[0], &rm_in[0],
                                      &rv_in[0], momentum, &out[0], &xc[0], xnp, &std[0],
                                      &rm_out[0], &rv_out[0], nt)
    if rc != 0:
        raise ValueError("bn_forward_train: invalid arguments")


def bn_forward_test(const floating[::1] x not None, int64_t N, int64_t C, int64_t I,
                    const floating[::1] gamma not None, const floating[::1] beta not None,
                    const floating[::1] rm not None, const floating[::1] rv not None,
                    floating[::1] out not None, int n_threads=1):
    """Test-time batch normalization with the running statistics."""
    cdef int64_t total = x.shape[0]
    _bn_sizes(total, N, C, I, "bn_forward_test")
    _same_len(total, out.shape[0], "bn_forward_test", "out")
    for arr, name in ((gamma, "gamma"), (beta, "beta"), (rm, "running_mean"),
                      (rv, "running_var")):
        _same_len(C, arr.shape[0], "bn_forward_test", name)
    cdef int nt = _threads(n_threads)
    cdef int rc
    if total == 0:
        return
    with nogil:
        if floating is float:
            rc = nnf_bn_fwd_test_f32(&x[0], N, C, I, &gamma[0], &beta[0], &rm[0], &rv[0],
                                     &out[0], nt)
        else:
            rc = nnf_bn_fwd_test_f64(&x[0], N, C, I, &gamma[0], &beta[0], &rm[0], &rv[0],
                                     &out[0], nt)
    if rc != 0:
        raise ValueError("bn_forward_test: invalid arguments")


def bn_backward(const floating[::1] dout not None, const floating[::1] xc not None,
                const floating[::1] xn, const floating[::1] std not None,
                const floating[::1] gamma not None, int64_t N, int64_t C, int64_t I,
                floating[::1] dx not None, floating[::1] dgamma not None,
                floating[::1] dbeta not None, int n_threads=1):
    """Backward of batch normalization from the caches of the training forward (xn may be
    None: xc/std, the values the forward would have stored, is used)."""
    cdef int64_t total = dout.shape[0]
    _bn_sizes(total, N, C, I, "bn_backward")
    if N < 1:
        raise ValueError("bn_backward: need at least one sample")
    for arr, name in ((xc, "xc"), (dx, "dx")):
        _same_len(total, arr.shape[0], "bn_backward", name)
    if xn is not None:
        _same_len(total, xn.shape[0], "bn_backward", "xn")
    for arr, name in ((std, "std"), (gamma, "gamma"), (dgamma, "dgamma"), (dbeta, "dbeta")):
        _same_len(C, arr.shape[0], "bn_backward", name)
    cdef int nt = _threads(n_threads)
    cdef int rc
    if total == 0:
        return
    cdef const floating *xnp = &xn[0] if xn is not None else NULL
    with nogil:
        if floating is float:
            rc = nnf_bn_bwd_f32(&dout[0], &xc[0], xnp, &std[0], &gamma[0], N, C, I,
                                &dx[0], &dgamma[0], &dbeta[0], nt)
        else:
            rc = nnf_bn_bwd_f64(&dout[0], &xc[0], xnp, &std[0], &gamma[0], N, C, I,
                                &dx[0], &dgamma[0], &dbeta[0], nt)
    if rc != 0:
        raise ValueError("bn_backward: invalid arguments")


# Optimizer updates: op codes for optim_update (C constants, mirrored as Python ints).
cdef enum:
    _SGD, _MOMENTUM, _NESTEROV, _ADAGRAD, _RMSPROP, _ADAM

OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV = _SGD, _MOMENTUM, _NESTEROV
OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM = _ADAGRAD, _RMSPROP, _ADAM


cdef inline bint _overlap(const void *a, const void *b, size_t nbytes) noexcept:
    """Whether [a, a + nbytes) and [b, b + nbytes) share a byte."""
    cdef const char *x = <const char *>a
    cdef const char *y = <const char *>b
    return x < y + nbytes and y < x + nbytes


def optim_update(int op, floating[::1] p not None, const floating[::1] g not None,
                 floating[::1] s1, floating[::1] s2, double a, double b, double c,
                 int n_threads=1):
    """One fused in-place update of p (flat) from g; s1/s2 are the state arrays (or None).

    Hyper-parameters (a, b, c): SGD (lr); Momentum/Nesterov (lr, momentum); AdaGrad (lr);
    RMSprop (lr, decay_rate); Adam (lr_t, beta1, beta2).
    """
    cdef int64_t n = p.shape[0]
    _same_len(n, g.shape[0], "optim_update", "grad")
    cdef int needs = 0 if op == _SGD else (2 if op == _ADAM else 1)
    if op < 0 or op > _ADAM:
        raise ValueError(f"optim_update: unknown op {op}")
    if needs >= 1:
        if s1 is None:
            raise ValueError("optim_update: missing state array")
        _same_len(n, s1.shape[0], "optim_update", "state")
    if needs == 2:
        if s2 is None:
            raise ValueError("optim_update: missing second state array")
        _same_len(n, s2.shape[0], "optim_update", "state")
    cdef int nt = _threads(n_threads)
    if n == 0:
        return
    cdef floating *s1p = &s1[0] if needs >= 1 else NULL
    cdef floating *s2p = &s2[0] if needs == 2 else NULL
    # the kernels take their arrays as restrict pointers: refuse overlaps, before writing
    cdef size_t nbytes = <size_t>n * sizeof(floating)
    if _overlap(&p[0], &g[0], nbytes) or (s1p != NULL and (
            _overlap(s1p, &p[0], nbytes) or _overlap(s1p, &g[0], nbytes))) \
            or (s2p != NULL and (_overlap(s2p, &p[0], nbytes) or _overlap(s2p, &g[0], nbytes)
                                 or _overlap(s2p, s1p, nbytes))):
        raise ValueError("optim_update: param, grad and the state arrays must not overlap")
    with nogil:
        if floating is float:
            if op == _SGD:
                nnf_sgd_f32(&p[0], &g[0], n, a, nt)
            elif op == _MOMENTUM:
                nnf_momentum_f32(&p[0], &g[0], s1p, n, a, b, nt)
            elif op == _NESTEROV:
                nnf_nesterov_f32(&p[0], &g[0], s1p, n, a, b, nt)
            elif op == _ADAGRAD:
                nnf_adagrad_f32(&p[0], &g[0], s1p, n, a, nt)
            elif op == _RMSPROP:
                nnf_rmsprop_f32(&p[0], &g[0], s1p, n, a, b, nt)
            else:
                nnf_adam_f32(&p[0], &g[0], s1p, s2p, n, a, b, c, nt)
        else:
            if op == _SGD:
                nnf_sgd_f64(&p[0], &g[0], n, a, nt)
            elif op == _MOMENTUM:
                nnf_momentum_f64(&p[0], &g[0], s1p, n, a, b, nt)
            elif op == _NESTEROV:
                nnf_nesterov_f64(&p[0], &g[0], s1p, n, a, b, nt)
            elif op == _ADAGRAD:
                nnf_adagrad_f64(&p[0], &g[0], s1p, n, a, nt)
            elif op == _RMSPROP:
                nnf_rmsprop_f64(&p[0], &g[0], s1p, n, a, b, nt)
            else:
                nnf_adam_f64(&p[0], &g[0], s1p, s2p, n, a, b, c, nt)
