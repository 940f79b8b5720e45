#include "model/quantized_weights.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "cpu/simd/kernels.h"
#include "cpu/thread_pool.h"
#include "moelens/error.h"
#include "moelens/logging.h"

namespace moelens {
namespace {

using cpu::simd::kQ8Block;

// Rows read from the checkpoint at a time when quantising (1 MiB of BF16 at 2048 columns).
constexpr int kRowsPerRead = 256;

// Bump when the q8 layout or the choice of matrices changes: old caches are then rebuilt.
constexpr const char* kFormat = "moelens-q8-64-v1";

struct Target {
    std::string name;
    WeightView* view;
};

// The matrices int8 replaces: every quantizable one (see matrices()) whose
// width is a whole number of blocks.
std::vector<Target> targets(ModelWeights& w)
{
    std::vector<Target> out;
    for (const NamedMatrix& m : matrices(w))
        if (m.quantizable && m.view->dtype != DType::U8 && m.view->cols % kQ8Block == 0) out.push_back({m.name, m.view});
    return out;
}

// Identifies the checkpoint the cache was made from: every weight file's name,
// size and modification time.
std::string source_key(const Checkpoint& ckpt)
{
    std::string key;
    for (const auto& f : ckpt.files()) {
        std::error_code ec;
        const auto mtime = std::filesystem::last_write_time(f.path(), ec);
        key += f.path().filename().string() + ":" + std::to_string(f.file_size()) + ":" +
               std::to_string(ec ? 0 : mtime.time_since_epoch().count()) + ";";
    }
    return key;
}

std::filesystem::path cache_path(const std::filesystem::path& cache_dir, const std::filesystem::path& model_dir)
{
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(model_dir, ec);
    if (ec) canon = model_dir;
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016zx", std::hash<std::string>{}(canon.string()));
    std::string stem = canon.filename().string();
    if (stem.empty()) stem = "model";
    return cache_dir / (stem + "-" + hash + ".q8.safetensors");
}

std::vector<std::int64_t> scale_shape(const WeightView& v) { return {v.rows, v.cols / kQ8Block}; }

// The cache's view of every target, in order; empty when the cache does not
// hold exactly what is expected.
std::vector<WeightView> cached_views(const SafetensorsFile& f, const std::vector<Target>& ts, const std::string& key)
{
    const auto& md = f.metadata();
    const auto fmt = md.find("format_q8"), src = md.find("source");
    if (fmt == md.end() || fmt->second != kFormat || src == md.end() || src->second != key) return {};
    std::vector<WeightView> views;
    for (const Target& t : ts) {
        const TensorInfo* q = f.find(t.name + ".q");
        const TensorInfo* s = f.find(t.name + ".s");
        if (!q || !s || q->dtype != DType::U8 || s->dtype != DType::F32 ||
            q->shape != std::vector<std::int64_t>{t.view->rows, t.view->cols} || s->shape != scale_shape(*t.view))
            return {};
        views.push_back({f.data(*q), DType::U8, t.view->rows, t.view->cols, reinterpret_cast<const float*>(f.data(*s))});
    }
    return views;
}

// Where each target's values and scales go in the buffer (64-byte aligned).
struct Slot {
    std::size_t values = 0;
    std::size_t scales = 0;
};

std::size_t align64(std::size_t n) { return (n + 63) / 64 * 64; }

std::vector<Slot> layout(const std::vector<Target>& ts, std::size_t& total)
{
    std::vector<Slot> slots;
    total = 0;
    for (const Target& t : ts) {
        const std::size_t nq = static_cast<std::size_t>(t.view->rows) * t.view->cols;  // cols % 64 == 0
        const std::size_t ns = static_cast<std::size_t>(t.view->rows) * (t.view->cols / kQ8Block) * sizeof(float);
        Slot sl;
        sl.values = total;
        total = align64(total + nq);
        sl.scales = total;
        total = align64(total + ns);
        slots.push_back(sl);
    }
    return slots;
}

// Streams the quantised matrices into `path` (through a temporary file renamed
// at the end, so a half-written cache is never picked up).
void write_cache(const std::filesystem::path& path, const std::vector<Target>& ts, const std::vector<WeightView>& qs,
                 const std::string& key)
{
    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}, {"format_q8", kFormat}, {"source", key}};
    std::uint64_t off = 0;
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const cpu::simd::Q8View v = cpu::simd::q8_view(qs[i]);
        const std::uint64_t nq = static_cast<std::uint64_t>(v.rows) * v.cols;
        const std::uint64_t ns = static_cast<std::uint64_t>(v.rows) * v.blocks * sizeof(float);
        header[ts[i].name + ".q"] = {{"dtype", "U8"}, {"shape", {v.rows, v.cols}}, {"data_offsets", {off, off + nq}}};
        off += nq;
        header[ts[i].name + ".s"] = {{"dtype", "F32"}, {"shape", {v.rows, v.blocks}}, {"data_offsets", {off, off + ns}}};
        off += ns;
    }
    std::string text = header.dump();
    while ((8 + text.size()) % 64 != 0) text.push_back(' ');

    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    const auto tmp = std::filesystem::path(path.string() + ".partial");
    std::FILE* out = std::fopen(tmp.c_str(), "wb");
    if (!out) throw ModelError(tmp.string() + ": cannot open the int8 weight cache for writing");
    bool ok = true;
    const auto write = [&](const void* p, std::size_t n) { ok = ok && std::fwrite(p, 1, n, out) == n; };
    std::uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
    write(len, 8);
    write(text.data(), text.size());
    for (const WeightView& q : qs) {
        const cpu::simd::Q8View v = cpu::simd::q8_view(q);
        write(v.q, static_cast<std::size_t>(v.rows) * v.cols);  // cols % 64 == 0: no padding in the rows
        write(v.scales, static_cast<std::size_t>(v.rows) * v.blocks * sizeof(float));
    }
    ok = (std::fclose(out) == 0) && ok;
    if (!ok) {
        std::filesystem::remove(tmp, ec);
        throw ModelError(tmp.string() + ": writing the int8 weight cache failed (disk full?)");
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw ModelError(path.string() + ": cannot rename the int8 weight cache into place: " + ec.message());
}

}  // namespace

std::unique_ptr<QuantizedWeights> QuantizedWeights::apply(ModelWeights& w, const Checkpoint& ckpt,
                                                          const std::filesystem::path& model_dir,
                                                          const LoadOptions& options)
{
    auto qw = std::make_unique<QuantizedWeights>();
    const std::vector<Target> ts = targets(w);
    qw->m_matrices = static_cast<int>(ts.size());
    for (const Target& t : ts)
        qw->m_bytes += static_cast<std::uint64_t>(t.view->rows) * t.view->cols * (kQ8Block + 4) / kQ8Block;
    std::size_t total = 0;
    const std::vector<Slot> slots = layout(ts, total);
    std::vector<WeightView> views;  // the int8 copies in the buffer, in target order
    const auto bind_buffer = [&] {
        qw->m_buffer = cpu::LargePageBuffer(total);
        for (std::size_t i = 0; i < ts.size(); ++i)
            views.push_back({qw->m_buffer.data() + slots[i].values, DType::U8, ts[i].view->rows, ts[i].view->cols,
                             reinterpret_cast<const float*>(qw->m_buffer.data() + slots[i].scales)});
    };
    const std::string key = source_key(ckpt);
    ThreadPool pool(options.threads);
    std::filesystem::path path;
    if (!options.cache_dir.empty()) {
        path = cache_path(options.cache_dir, model_dir);
        std::error_code ec;
        if (std::filesystem::is_regular_file(path, ec)) {
            try {
                const SafetensorsFile f(path);
                const std::vector<WeightView> cached = cached_views(f, ts, key);
                if (!cached.empty()) {
                    bind_buffer();
                    for (std::size_t i = 0; i < ts.size(); ++i) {
                        const cpu::simd::Q8View from = cpu::simd::q8_view(cached[i]);
                        const std::size_t nq = static_cast<std::size_t>(from.rows) * from.cols;
                        const std::size_t ns = static_cast<std::size_t>(from.rows) * from.blocks * sizeof(float);
                        std::byte* to = qw->m_buffer.data();
                        const auto* q = reinterpret_cast<const std::byte*>(from.q);
                        pool.parallel_for(static_cast<int>(nq / kQ8Block), [&](int b, int e) {
                            f.read_mapped(q + std::size_t(b) * kQ8Block, std::size_t(e - b) * kQ8Block,
                                          to + slots[i].values + std::size_t(b) * kQ8Block);
                        }, 1 << 14);
                        f.read_mapped(reinterpret_cast<const std::byte*>(from.scales), ns, to + slots[i].scales);
                        *ts[i].view = views[i];
                    }
                    qw->m_from_cache = true;
                    engine_log().info("int8 weights read from {}", path.string());
                    return qw;
                }
                engine_log().info("int8 weight cache {} is for another checkpoint or format; rebuilding", path.string());
            } catch (const ModelError& e) {
                engine_log().warn("int8 weight cache unreadable, rebuilding: {}", e.what());
            }
        }
    }

    const auto t0 = std::chrono::steady_clock::now();
    bind_buffer();
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const WeightView src = *ts[i].view;
        auto* values = reinterpret_cast<std::uint8_t*>(qw->m_buffer.data() + slots[i].values);
        auto* scales = reinterpret_cast<float*>(qw->m_buffer.data() + slots[i].scales);
        // Rows are read out of the file in chunks into a thread's buffer (see
        // Checkpoint::read), then quantised from there.
        const std::size_t row_bytes = static_cast<std::size_t>(src.cols) * dtype_size(src.dtype);
        const int blocks = cpu::simd::q8_blocks(src.cols);
        pool.parallel_for(src.rows, [&](int b, int e) {
            thread_local std::vector<std::byte> rows;
            for (int r = b; r < e; r += kRowsPerRead) {
                const int n = std::min(kRowsPerRead, e - r);
                rows.resize(row_bytes * n);
                ckpt.read(src.data + row_bytes * r, row_bytes * n, rows.data());
                const WeightView chunk{rows.data(), src.dtype, n, src.cols};
                cpu::simd::quantize_q8_rows(chunk, values + std::size_t(r) * blocks * kQ8Block,
                                            scales + std::size_t(r) * blocks, 0, n);
            }
        }, kRowsPerRead);
    }
    engine_log().info("quantised {} matrices to int8 in {:.1f} s", ts.size(),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!path.empty()) write_cache(path, ts, views, key);
    for (std::size_t i = 0; i < ts.size(); ++i) *ts[i].view = views[i];
    return qw;
}

}  // namespace moelens
