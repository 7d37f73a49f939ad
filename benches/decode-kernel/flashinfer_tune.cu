// Times the split-KV decode attention kernels mistral.rs runs under docent on Qwen3-4B's decode
// shape, one token of one sequence: 32 query heads over 8 KV heads of 128, bf16, 32-token pages,
// 36 layers each with its own cache, so a step reads what a real decode step reads and nothing
// stays in L2. The kernels: FlashInfer's (vendored in
// vendor/mistral.rs/mistralrs-paged-attn/src/cuda/flashinfer), at upstream's tiling and another,
// and docent's tensor-core kernel (docent_gqa_decode.cuh beside it) at several pipeline depths
// and occupancies. Each, at each split-KV chunk size (mistral.rs's planned one marked), is timed
// as one CUDA graph of the 36 layers' decode and merge launches (median of 15), and its output for
// layer 0 is checked against an fp32 reference.
//
// On the GPU machine: benches/decode-kernel/run.sh [context tokens...]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <vector>

#include "flashinfer/attention/cascade.cuh"
#include "flashinfer/attention/decode.cuh"
#include "flashinfer/attention/default_decode_params.cuh"
#include "flashinfer/attention/variants.cuh"
#include "docent_gqa_decode.cuh"

using namespace flashinfer;
using T = __nv_bfloat16;
using Params = BatchDecodeParams<T, T, T, int32_t>;
using Variant = DefaultAttention<false, false, false, false>;

constexpr uint32_t HEAD_DIM = 128, NUM_QO = 32, NUM_KV = 8, GROUP = NUM_QO / NUM_KV, PAGE = 32;
constexpr uint32_t LAYERS = 36, VEC = 8, BDX = HEAD_DIM / VEC, BDY = GROUP;

#define CHECK(x)                                                                              \
  do {                                                                                        \
    cudaError_t e = (x);                                                                      \
    if (e != cudaSuccess) {                                                                   \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e));      \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

__global__ void fill(T* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 31; x *= 0xBF58476D1CE4E5B9ull; x ^= x >> 29;
    p[i] = __float2bfloat16(float(int(x % 2001) - 1000) / 1000.0f);
  }
}

// fp32 reference for one layer: scores, softmax, weighted sum, one block per query head.
__global__ void ref_scores(const T* q, const T* k, float* s, uint32_t ctx, float scale) {
  uint32_t h = blockIdx.y, kvh = h / GROUP;
  for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < ctx; t += gridDim.x * blockDim.x) {
    const T* kr = k + ((size_t(t / PAGE) * NUM_KV + kvh) * PAGE + t % PAGE) * HEAD_DIM;
    float acc = 0;
    for (uint32_t d = 0; d < HEAD_DIM; ++d) acc += __bfloat162float(q[h * HEAD_DIM + d]) * __bfloat162float(kr[d]);
    s[size_t(h) * ctx + t] = acc * scale;
  }
}

__global__ void ref_out(const float* s, const T* v, float* o, uint32_t ctx) {
  uint32_t h = blockIdx.x, kvh = h / GROUP, d = threadIdx.x;
  __shared__ float mx, sum;
  if (d == 0) {
    float m = -INFINITY;
    for (uint32_t t = 0; t < ctx; ++t) m = fmaxf(m, s[size_t(h) * ctx + t]);
    float z = 0;
    for (uint32_t t = 0; t < ctx; ++t) z += expf(s[size_t(h) * ctx + t] - m);
    mx = m; sum = z;
  }
  __syncthreads();
  float acc = 0;
  for (uint32_t t = 0; t < ctx; ++t) {
    const T* vr = v + ((size_t(t / PAGE) * NUM_KV + kvh) * PAGE + t % PAGE) * HEAD_DIM;
    acc += expf(s[size_t(h) * ctx + t] - mx) * __bfloat162float(vr[d]);
  }
  o[h * HEAD_DIM + d] = acc / sum;
}

struct Setup {
  uint32_t ctx, chunk, tiles;
  T *q, *o, *tmp_v;
  float* tmp_s;
  int32_t *indptr, *indices, *last_len, *req, *tile, *o_indptr, *chunk_ptr;
  bool* valid;
};

// STAGES == 0: docent's tensor-core kernel (docent_gqa_decode.cuh) in place of FlashInfer's,
// with TILE pipeline stages and THREADS as its minimum resident blocks per SM (launch bounds).
template <uint32_t STAGES, uint32_t TILE, uint32_t THREADS>
void launch(const Setup& s, T* k, T* v, cudaStream_t stream) {
  if constexpr (STAGES == 0) {
    docent_gqa::Args<T> a{};
    a.q = s.q; a.k = k; a.v = v; a.kv_indptr = s.indptr; a.kv_indices = s.indices;
    a.kv_last_page_len = s.last_len; a.request_indices = s.req; a.kv_tile_indices = s.tile;
    a.kv_chunk_size_ptr = s.chunk_ptr; a.block_valid_mask = s.valid; a.o = s.tmp_v; a.lse = s.tmp_s;
    a.partition_kv = true; a.group = GROUP; a.num_qo_heads = NUM_QO; a.page_size = PAGE;
    a.stride_page = int64_t(NUM_KV) * PAGE * HEAD_DIM; a.stride_h = PAGE * HEAD_DIM; a.stride_n = HEAD_DIM;
    a.q_stride_n = NUM_QO * HEAD_DIM; a.q_stride_h = HEAD_DIM;
    a.sm_scale_log2 = 1.f / sqrtf(float(HEAD_DIM)) * 1.4426950408889634f;
    CHECK((docent_gqa::launch<T, TILE, THREADS>(a, s.tiles, NUM_KV, stream)));
    CHECK(VariableLengthMergeStates(s.tmp_v, s.tmp_s, s.o_indptr, s.o, (float*)nullptr, 1, (uint32_t*)nullptr,
                                    NUM_QO, HEAD_DIM, false, stream));
    return;
  } else {
  constexpr uint32_t BDZ = THREADS / (BDX * BDY);
  paged_kv_t<T, int32_t> kv(NUM_KV, PAGE, HEAD_DIM, 1, QKVLayout::kHND, k, v, s.indices, s.indptr, s.last_len);
  Params p(s.q, nullptr, kv, s.tmp_v, nullptr, nullptr, NUM_QO, NUM_QO * HEAD_DIM, HEAD_DIM, -1, 0.f,
           1.f / sqrtf(float(HEAD_DIM)), 1.f, 1.f);
  p.request_indices = s.req;
  p.kv_tile_indices = s.tile;
  p.o_indptr = s.o_indptr;
  p.kv_chunk_size_ptr = s.chunk_ptr;
  p.block_valid_mask = s.valid;
  p.padded_batch_size = s.tiles;
  p.partition_kv = true;
  p.lse = s.tmp_s;
  auto kernel = BatchDecodeWithPagedKVCacheKernel<PosEncodingMode::kNone, STAGES, TILE, VEC, BDX, BDY, BDZ, Variant, Params>;
  const uint32_t smem = 2 * STAGES * TILE * BDY * BDZ * HEAD_DIM * sizeof(T) +
                        std::max<size_t>(TILE * THREADS * sizeof(T*), 2 * BDY * BDZ * sizeof(float));
  CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  void* args[] = {(void*)&p};
  CHECK(cudaLaunchKernel((void*)kernel, dim3(s.tiles, NUM_KV), dim3(BDX, BDY, BDZ), args, smem, stream));
  CHECK(VariableLengthMergeStates(s.tmp_v, s.tmp_s, s.o_indptr, s.o, (float*)nullptr, 1, (uint32_t*)nullptr,
                                  NUM_QO, HEAD_DIM, false, stream));
  }
}

// mistral.rs's planner (mistralrs-core/src/flashinfer/metadata.rs): about two blocks per SM,
// a power of two between 256 and 2048 tokens.
uint32_t planned_chunk(uint32_t ctx, uint32_t sms) {
  uint32_t need = std::max<uint32_t>(1, (2 * sms + NUM_KV - 1) / NUM_KV);
  uint32_t t = std::clamp<uint32_t>(ctx / need, 256, 2048);
  uint32_t p = 1;
  while (p * 2 <= t) p *= 2;
  return p;
}

struct Buffers {
  std::vector<T*> k, v;
  T *q, *o, *tmp_v;
  float *tmp_s, *ref_s, *ref_o;
  int32_t *indptr, *indices, *last_len, *req, *tile, *o_indptr, *chunk_ptr;
  bool* valid;
};

Setup plan(Buffers& b, uint32_t ctx, uint32_t chunk) {
  Setup s{};
  s.ctx = ctx;
  s.chunk = chunk;
  s.tiles = (ctx + chunk - 1) / chunk;
  uint32_t pages = ctx / PAGE;
  std::vector<int32_t> indptr = {0, int32_t(pages)}, last = {int32_t(PAGE)}, req(s.tiles, 0), tile(s.tiles),
                       oind = {0, int32_t(s.tiles)}, ch = {int32_t(chunk)};
  for (uint32_t i = 0; i < s.tiles; ++i) tile[i] = i;
  std::vector<char> valid(s.tiles, 1);
  CHECK(cudaMemcpy(b.indptr, indptr.data(), 8, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b.last_len, last.data(), 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b.req, req.data(), 4 * s.tiles, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b.tile, tile.data(), 4 * s.tiles, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b.o_indptr, oind.data(), 8, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b.chunk_ptr, ch.data(), 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b.valid, valid.data(), s.tiles, cudaMemcpyHostToDevice));
  s.q = b.q; s.o = b.o; s.tmp_v = b.tmp_v; s.tmp_s = b.tmp_s;
  s.indptr = b.indptr; s.indices = b.indices; s.last_len = b.last_len; s.req = b.req; s.tile = b.tile;
  s.o_indptr = b.o_indptr; s.chunk_ptr = b.chunk_ptr; s.valid = b.valid;
  return s;
}

template <uint32_t STAGES, uint32_t TILE, uint32_t THREADS>
void run(Buffers& b, uint32_t ctx, uint32_t chunk, const char* name, const std::vector<float>& ref) {
  Setup s = plan(b, ctx, chunk);
  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));
  // Layer 0 alone, checked against the reference.
  launch<STAGES, TILE, THREADS>(s, b.k[0], b.v[0], stream);
  CHECK(cudaStreamSynchronize(stream));
  std::vector<T> out(NUM_QO * HEAD_DIM);
  CHECK(cudaMemcpy(out.data(), b.o, out.size() * sizeof(T), cudaMemcpyDeviceToHost));
  float err = 0;
  for (size_t i = 0; i < out.size(); ++i) err = std::max(err, std::fabs(__bfloat162float(out[i]) - ref[i]));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (uint32_t l = 0; l < LAYERS; ++l) launch<STAGES, TILE, THREADS>(s, b.k[l], b.v[l], stream);
  CHECK(cudaStreamEndCapture(stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(exec, stream));
  cudaEvent_t a, z;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&z));
  std::vector<float> ms;
  for (int i = 0; i < 15; ++i) {
    CHECK(cudaEventRecord(a, stream));
    CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaEventRecord(z, stream));
    CHECK(cudaEventSynchronize(z));
    float m;
    CHECK(cudaEventElapsedTime(&m, a, z));
    ms.push_back(m);
  }
  std::sort(ms.begin(), ms.end());
  double bytes = double(ctx) * NUM_KV * HEAD_DIM * sizeof(T) * 2 * LAYERS;
  printf("| %s | %u | %u | %u | %.3f | %.2f | %.1e |\n", name, ctx, chunk, s.tiles, ms[ms.size() / 2],
         bytes / (ms[ms.size() / 2] * 1e-3) / 1e12, err);
  fflush(stdout);
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  CHECK(cudaStreamDestroy(stream));
}

int main(int argc, char** argv) {
  std::vector<uint32_t> ctxs = {8192, 32768, 262144};
  if (argc > 1) {
    ctxs.clear();
    for (int i = 1; i < argc; ++i) ctxs.push_back(uint32_t(atoi(argv[i])));
  }
  uint32_t max_ctx = *std::max_element(ctxs.begin(), ctxs.end());
  int sms;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  Buffers b{};
  size_t layer = size_t(max_ctx / PAGE) * NUM_KV * PAGE * HEAD_DIM;
  for (uint32_t l = 0; l < LAYERS; ++l) {
    T *k, *v;
    CHECK(cudaMalloc(&k, layer * sizeof(T)));
    CHECK(cudaMalloc(&v, layer * sizeof(T)));
    fill<<<1024, 256>>>(k, layer, 2 * l + 1);
    fill<<<1024, 256>>>(v, layer, 2 * l + 2);
    b.k.push_back(k);
    b.v.push_back(v);
  }
  uint32_t max_tiles = max_ctx / 64 + 1;
  CHECK(cudaMalloc(&b.q, NUM_QO * HEAD_DIM * sizeof(T)));
  CHECK(cudaMalloc(&b.o, NUM_QO * HEAD_DIM * sizeof(T)));
  CHECK(cudaMalloc(&b.tmp_v, size_t(max_tiles) * NUM_QO * HEAD_DIM * sizeof(T)));
  CHECK(cudaMalloc(&b.tmp_s, size_t(max_tiles) * NUM_QO * sizeof(float)));
  CHECK(cudaMalloc(&b.ref_s, size_t(NUM_QO) * max_ctx * sizeof(float)));
  CHECK(cudaMalloc(&b.ref_o, NUM_QO * HEAD_DIM * sizeof(float)));
  CHECK(cudaMalloc(&b.indptr, 8));
  CHECK(cudaMalloc(&b.indices, (max_ctx / PAGE) * 4));
  CHECK(cudaMalloc(&b.last_len, 4));
  CHECK(cudaMalloc(&b.req, max_tiles * 4));
  CHECK(cudaMalloc(&b.tile, max_tiles * 4));
  CHECK(cudaMalloc(&b.o_indptr, 8));
  CHECK(cudaMalloc(&b.chunk_ptr, 4));
  CHECK(cudaMalloc(&b.valid, max_tiles));
  fill<<<8, 256>>>(b.q, NUM_QO * HEAD_DIM, 99);
  std::vector<int32_t> idx(max_ctx / PAGE);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int32_t(i);
  CHECK(cudaMemcpy(b.indices, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaDeviceSynchronize());

  printf("| kernel (FlashInfer: stages, tokens/thread, threads) | context | chunk | tiles | ms per step (36 layers) | TB/s | max abs err |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (uint32_t ctx : ctxs) {
    ref_scores<<<dim3(64, NUM_QO), 256>>>(b.q, b.k[0], b.ref_s, ctx, 1.f / sqrtf(float(HEAD_DIM)));
    ref_out<<<NUM_QO, HEAD_DIM>>>(b.ref_s, b.v[0], b.ref_o, ctx);
    std::vector<float> ref(NUM_QO * HEAD_DIM);
    CHECK(cudaMemcpy(ref.data(), b.ref_o, ref.size() * 4, cudaMemcpyDeviceToHost));
    uint32_t planned = planned_chunk(ctx, uint32_t(sms));
    std::vector<uint32_t> chunks = {planned};
    for (uint32_t c : {512u, 1024u, 2048u, 4096u, 8192u, 16384u})
      if (c != planned && c <= ctx / 4) chunks.push_back(c);
    for (uint32_t c : chunks) {
      const char* tag = c == planned ? " (planned)" : "";
      char name[96];
#define RUN(S, TL, TH)                                                          \
  snprintf(name, sizeof name, S == 0 ? "docent mma, %.0u%u stages, %u blocks/SM%s" : "flashinfer %u, %u, %u%s", S, TL, TH, tag);                  \
  run<S, TL, TH>(b, ctx, c, name, ref);
      RUN(2, 1, 128)  // upstream FlashInfer's choice for a group of 4
      RUN(2, 4, 128)  // the best other tiling seen at 256K
      RUN(0, 2, 1)    // docent's tensor-core kernel, 2 stages
      RUN(0, 2, 2)
      RUN(0, 2, 3)
      RUN(0, 3, 2)
    }
  }
  return 0;
}
