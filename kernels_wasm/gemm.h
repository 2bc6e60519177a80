/* The GEMM kernels (f32-gemm-4x8-wasmsimd.c) as the convolutions call them; the arguments are documented there. */
#pragma once
#include "common.h"

void f32_gemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
              float alpha, const float* bias, int bias_rs, int bias_cs, float beta, int act, float p0, float p1,
              const float* residual, int res_ld);
void f32_gemm_packed(int M, int N, int K, const float* A, int lda, const float* Bp, float* C, int ldc, float alpha,
                     const float* bias, int bias_rs, int bias_cs, float beta, int act, float p0, float p1,
                     const float* residual, int res_ld, int mr);
void f32_pack_b(int K, int N, const float* B, int ldb, float* Bp);
