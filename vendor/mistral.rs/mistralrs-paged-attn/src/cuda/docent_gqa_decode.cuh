// docent patch (README.docent.md): split-KV paged decode for grouped-query attention on tensor
// cores. FlashInfer's decode kernel computes every query head's dot products on the CUDA cores
// and, for a group of 4 query heads per KV head, runs out of instruction issue before it runs out
// of memory bandwidth (about 2.8 TB/s on an H200 at 256K tokens; benches/decode-kernel). Here the
// group's query heads are the rows of one 16-row mma tile, so each KV head's keys and values are
// read once and multiplied with mma.sync; the kernel takes FlashInfer's parameters and tile plan
// unchanged and writes the same partial outputs and log2-domain LSEs for its merge kernel.
//
// Shape: head dim 128, fp16 or bf16 cache in HND layout, group size up to 16, page size a multiple
// of 16. A CTA of 4 warps takes one (request, KV chunk) tile and one KV head; the chunk is read
// 64 tokens at a time through a 2-stage cp.async pipeline, each warp taking 16 of the 64 tokens
// with its own online softmax; the 4 warps' states are merged in shared memory at the end.
// benches/decode-kernel/flashinfer_tune.cu times it against FlashInfer's kernel and checks both
// against an fp32 reference. There 3 or 4 stages were slower, and asking for 2 resident blocks per
// SM gained 4% at 256K tokens but lost 18% at 32K, so the defaults stay.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <cstdlib>
#include <cstring>

namespace docent_gqa {

constexpr int HEAD_DIM = 128;
constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int TILE_TOKENS = 16 * WARPS;                    // tokens per pipeline stage
constexpr int ROW_BYTES = HEAD_DIM * 2;                    // one token of one head, 16-bit
constexpr int STAGE_BYTES = 2 * TILE_TOKENS * ROW_BYTES;   // K and V: 32 KiB
constexpr int MERGE_BYTES = WARPS * 16 * (HEAD_DIM + 2) * 4;
constexpr int Q_BYTES = 16 * ROW_BYTES;                    // the group's query rows, 4 KiB
template <int STAGES> constexpr int smem_bytes() {
  return (STAGES * STAGE_BYTES > MERGE_BYTES ? STAGES * STAGE_BYTES : MERGE_BYTES) + Q_BYTES;
}
constexpr float LOG2E = 1.4426950408889634f;

template <typename T> struct Mma;
template <> struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  static __device__ __forceinline__ __nv_bfloat16 from(float x) { return __float2bfloat16_rn(x); }
};
template <> struct Mma<__half> {
  static __device__ __forceinline__ void run(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  static __device__ __forceinline__ __half from(float x) { return __float2half_rn(x); }
};

// Byte offset of 16-byte column `col` (0..15) of token row `row` in a stage, XOR-swizzled so
// that the 8 rows one ldmatrix reads fall in different banks.
__device__ __forceinline__ uint32_t swz(uint32_t row, uint32_t col) {
  return row * ROW_BYTES + ((col ^ (row & 7)) << 4);
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldsm_x4(uint32_t* r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t* r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// The arguments of FlashInfer's BatchDecodeParams and paged_kv_t that this kernel reads.
template <typename T> struct Args {
  const T* q;
  const T* k;
  const T* v;
  const int32_t* kv_indptr;
  const int32_t* kv_indices;
  const int32_t* kv_last_page_len;
  const int32_t* request_indices;
  const int32_t* kv_tile_indices;
  const int32_t* kv_chunk_size_ptr;
  const bool* block_valid_mask;
  T* o;        // [tiles, num_qo_heads, 128]: tmp_v when partitioned, else the output
  float* lse;  // [tiles, num_qo_heads] (log2 domain), may be null
  bool partition_kv;
  int32_t group;
  int32_t num_qo_heads;
  int32_t page_size;
  int64_t stride_page, stride_h, stride_n;  // elements
  int64_t q_stride_n, q_stride_h;
  float sm_scale_log2;
};

template <typename T, int STAGES, int MIN_BLOCKS>
__global__ void __launch_bounds__(THREADS, MIN_BLOCKS) decode_kernel(const __grid_constant__ Args<T> a) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int bx = blockIdx.x, kvh = blockIdx.y;
  if (a.block_valid_mask && !a.block_valid_mask[bx]) return;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int batch = a.request_indices[bx];
  const int page_begin = a.kv_indptr[batch], page_end = a.kv_indptr[batch + 1];
  const int kv_len = page_end == page_begin ? 0 : (page_end - page_begin - 1) * a.page_size + a.kv_last_page_len[batch];
  const int chunk = a.partition_kv ? *a.kv_chunk_size_ptr : kv_len;
  const int chunk_start = a.partition_kv ? a.kv_tile_indices[bx] * chunk : 0;
  const int chunk_end = min(chunk_start + chunk, kv_len);
  const int chunk_len = max(chunk_end - chunk_start, 0);
  const int tiles = (chunk_len + TILE_TOKENS - 1) / TILE_TOKENS;
  const uint32_t smem_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));

  // Loads tile `t` of the chunk into stage `t % STAGES`: 64 tokens of K then V, 16 bytes a thread
  // per copy; tokens past the chunk are zero-filled (a zero V row times a zero weight stays 0).
  auto load = [&](int t) {
    const uint32_t stage = smem_base + (t % STAGES) * STAGE_BYTES;
#pragma unroll
    for (int i = 0; i < TILE_TOKENS * 16 / THREADS; ++i) {
      const int c = tid + i * THREADS, row = c / 16, col = c % 16;
      const int tok = chunk_start + t * TILE_TOKENS + row;
      const bool valid = tok < chunk_end;
      int64_t off = 0;
      if (valid) {
        const int page = __ldg(a.kv_indices + page_begin + tok / a.page_size);
        off = page * a.stride_page + kvh * a.stride_h + (tok % a.page_size) * a.stride_n + col * 8;
      }
      cp_async16(stage + swz(row, col), a.k + off, valid);
      cp_async16(stage + TILE_TOKENS * ROW_BYTES + swz(row, col), a.v + off, valid);
    }
  };

  // The group's query heads, the A operand, in shared memory after the pipeline: rows are heads
  // (rows >= group are zero), read per k-step of 16 dimensions with ldmatrix.
  const uint32_t q_smem = smem_base + (smem_bytes<STAGES>() - Q_BYTES);
  {
    const T* q = a.q + static_cast<int64_t>(batch) * a.q_stride_n;
    for (int c = tid; c < 16 * 16; c += THREADS) {
      const int row = c / 16, col = c % 16;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (row < a.group) v = *reinterpret_cast<const uint4*>(q + (kvh * a.group + row) * a.q_stride_h + col * 8);
      asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};\n" ::"r"(q_smem + swz(row, col)), "r"(v.x), "r"(v.y),
                   "r"(v.z), "r"(v.w));
    }
  }
  const int q_row = (lane % 8) + ((lane / 8) % 2) * 8;

  float o[16][4];
#pragma unroll
  for (int n = 0; n < 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < tiles) load(s);
    cp_commit();
  }
  for (int t = 0; t < tiles; ++t) {
    if (t + STAGES - 1 < tiles) load(t + STAGES - 1);
    cp_commit();
    cp_wait<STAGES - 1>();
    __syncthreads();
    const uint32_t kst = smem_base + (t % STAGES) * STAGE_BYTES;
    const uint32_t vst = kst + TILE_TOKENS * ROW_BYTES;

    // S = Q K^T over this warp's 16 tokens: two n-tiles of 8 tokens.
    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    {
      const int row = warp * 16 + (lane % 8) + (lane / 16) * 8;
#pragma unroll
      for (int ks = 0; ks < 8; ++ks) {
        uint32_t qa[4], b[4];
        ldsm_x4(qa, q_smem + swz(q_row, 2 * ks + lane / 16));
        ldsm_x4(b, kst + swz(row, 2 * ks + (lane / 8) % 2));
        Mma<T>::run(s[0], qa, b[0], b[1]);
        Mma<T>::run(s[1], qa, b[2], b[3]);
      }
    }
    // Online softmax in the log2 domain; rows lane/4 (s[.][0..1]) and lane/4 + 8 (s[.][2..3]).
    const int base = t * TILE_TOKENS + warp * 16 + 2 * (lane % 4);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const bool valid = base + n * 8 + (j & 1) < chunk_len;
        s[n][j] = valid ? s[n][j] * a.sm_scale_log2 : -INFINITY;
        mx[j / 2] = fmaxf(mx[j / 2], s[n][j]);
      }
    float scale[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 2));
      const float mn = fmaxf(m[r], mx[r]);
      const float ref = mn == -INFINITY ? 0.f : mn;
      scale[r] = exp2f(m[r] - ref);
      m[r] = mn;
      mx[r] = ref;
      l[r] *= scale[r];
    }
    uint32_t pa[4];
    {
      float p[2][4];
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          p[n][j] = exp2f(s[n][j] - mx[j / 2]);
          l[j / 2] += p[n][j];
        }
      pa[0] = Mma<T>::pack(p[0][0], p[0][1]);
      pa[1] = Mma<T>::pack(p[0][2], p[0][3]);
      pa[2] = Mma<T>::pack(p[1][0], p[1][1]);
      pa[3] = Mma<T>::pack(p[1][2], p[1][3]);
    }
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      o[n][0] *= scale[0];
      o[n][1] *= scale[0];
      o[n][2] *= scale[1];
      o[n][3] *= scale[1];
    }
    // O += P V: V's rows are this warp's 16 tokens, read transposed, two n-tiles per ldmatrix.
    {
      const int row = warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
#pragma unroll
      for (int dp = 0; dp < 8; ++dp) {
        uint32_t b[4];
        ldsm_x4_t(b, vst + swz(row, 2 * dp + lane / 16));
        Mma<T>::run(o[2 * dp], pa, b[0], b[1]);
        Mma<T>::run(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();
  }
  cp_wait<0>();
  __syncthreads();

  // Merge the 4 warps' states: per warp and row, m, l and the unnormalised output.
  float* sm_m = reinterpret_cast<float*>(smem);
  float* sm_l = sm_m + WARPS * 16;
  float* sm_o = sm_l + WARPS * 16;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffff, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffff, l[r], 2);
  }
  {
    const int r0 = lane / 4, c = 2 * (lane % 4);
    if (lane % 4 == 0) {
      sm_m[warp * 16 + r0] = m[0];
      sm_m[warp * 16 + r0 + 8] = m[1];
      sm_l[warp * 16 + r0] = l[0];
      sm_l[warp * 16 + r0 + 8] = l[1];
    }
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      float* w = sm_o + (warp * 16) * HEAD_DIM + n * 8 + c;
      w[r0 * HEAD_DIM] = o[n][0];
      w[r0 * HEAD_DIM + 1] = o[n][1];
      w[(r0 + 8) * HEAD_DIM] = o[n][2];
      w[(r0 + 8) * HEAD_DIM + 1] = o[n][3];
    }
  }
  __syncthreads();
  for (int i = tid; i < a.group * HEAD_DIM; i += THREADS) {
    const int r = i / HEAD_DIM, d = i % HEAD_DIM;
    float mm = -INFINITY;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) mm = fmaxf(mm, sm_m[w * 16 + r]);
    float ll = 0.f, acc = 0.f;
    if (mm != -INFINITY) {
#pragma unroll
      for (int w = 0; w < WARPS; ++w) {
        const float f = exp2f(sm_m[w * 16 + r] - mm);
        ll += sm_l[w * 16 + r] * f;
        acc += sm_o[(w * 16 + r) * HEAD_DIM + d] * f;
      }
    }
    const int head = kvh * a.group + r;
    a.o[(static_cast<int64_t>(bx) * a.num_qo_heads + head) * HEAD_DIM + d] = Mma<T>::from(ll > 0.f ? acc / ll : 0.f);
    if (d == 0 && a.lse) a.lse[bx * a.num_qo_heads + head] = ll > 0.f ? mm + log2f(ll) : -INFINITY;
  }
}

// DOCENT_GQA_DECODE=0 sends every decode to FlashInfer's kernel instead, so that one build can
// compare the two (scripts/device-prefill.sh, step decode).
inline bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("DOCENT_GQA_DECODE");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

// Whether this kernel takes the shape; the caller falls back to FlashInfer's otherwise.
inline bool takes(int head_dim, int group, int page_size, bool sliding_window, bool soft_cap) {
  return head_dim == HEAD_DIM && group >= 1 && group <= 16 && page_size % 16 == 0 && !sliding_window &&
         !soft_cap;
}

template <typename T, int STAGES = 2, int MIN_BLOCKS = 1>
cudaError_t launch(const Args<T>& args, int tiles, int num_kv_heads, cudaStream_t stream) {
  auto kernel = decode_kernel<T, STAGES, MIN_BLOCKS>;
  constexpr int smem = smem_bytes<STAGES>();
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<dim3(tiles, num_kv_heads), THREADS, smem, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace docent_gqa
