#include "moelens_storage/trace_codec.h"

#include <cstring>
#include <string>

#include "crc32.h"
#include "half.h"
#include "moelens_storage/error.h"

namespace moelens::storage {

namespace {

constexpr std::uint8_t kMagic[4] = {'M', 'L', 'T', 'R'};
constexpr std::size_t kHeaderSize = 28;
constexpr std::uint16_t kFlagTexts = 1;
constexpr std::uint8_t kWeightsBinary16 = 1;
// Bounds that no real model reaches; they keep a lying header from asking for gigabytes.
constexpr std::uint32_t kMaxLayers = 4096;
constexpr std::uint32_t kMaxTokens = 1u << 24;

[[noreturn]] void fail(const std::string& what)
{
    throw StorageError(ErrorKind::TraceFormat, "trace blob: " + what);
}

class Writer {
public:
    explicit Writer(std::vector<std::uint8_t>& out) : m_out(out) {}
    void u8(std::uint8_t v) { m_out.push_back(v); }
    void u16(std::uint16_t v)
    {
        u8(static_cast<std::uint8_t>(v));
        u8(static_cast<std::uint8_t>(v >> 8));
    }
    void u32(std::uint32_t v)
    {
        u16(static_cast<std::uint16_t>(v));
        u16(static_cast<std::uint16_t>(v >> 16));
    }
    void varint(std::uint64_t v)
    {
        while (v >= 0x80) {
            u8(static_cast<std::uint8_t>(v | 0x80));
            v >>= 7;
        }
        u8(static_cast<std::uint8_t>(v));
    }
    void bytes(const void* data, std::size_t n)
    {
        const auto* p = static_cast<const std::uint8_t*>(data);
        m_out.insert(m_out.end(), p, p + n);
    }

private:
    std::vector<std::uint8_t>& m_out;
};

class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> in) : m_in(in) {}
    std::size_t left() const { return m_in.size() - m_pos; }
    void need(std::size_t n, const char* what) const
    {
        if (left() < n)
            fail(std::string(what) + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(m_pos) +
                 ", only " + std::to_string(left()) + " left (truncated)");
    }
    std::uint8_t u8(const char* what)
    {
        need(1, what);
        return m_in[m_pos++];
    }
    std::uint16_t u16(const char* what)
    {
        need(2, what);
        const std::uint16_t v = static_cast<std::uint16_t>(m_in[m_pos] | (m_in[m_pos + 1] << 8));
        m_pos += 2;
        return v;
    }
    std::uint32_t u32(const char* what)
    {
        const std::uint32_t lo = u16(what);
        const std::uint32_t hi = u16(what);
        return lo | (hi << 16);
    }
    std::uint64_t varint(const char* what)
    {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            const std::uint8_t b = u8(what);
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        fail(std::string(what) + ": varint longer than 10 bytes");
    }
    std::string text(std::size_t n, const char* what)
    {
        need(n, what);
        std::string s(reinterpret_cast<const char*>(m_in.data() + m_pos), n);
        m_pos += n;
        return s;
    }

private:
    std::span<const std::uint8_t> m_in;
    std::size_t m_pos = 0;
};

}  // namespace

std::vector<std::uint8_t> encode_trace(const RoutingTrace& trace)
{
    trace.validate();
    const bool texts = !trace.token_texts.empty();
    const std::uint8_t width = trace.n_experts <= 256 ? 1 : 2;
    const std::size_t rows = trace.expert_ids.size();

    std::vector<std::uint8_t> out;
    out.reserve(kHeaderSize + trace.layers.size() * 2 + trace.n_tokens() * (4 + (texts ? 6 : 0)) + rows * (width + 2) +
                trace.group_ids.size() + 4);
    Writer w(out);
    w.bytes(kMagic, sizeof kMagic);
    w.u16(kTraceFormatVersion);
    w.u16(texts ? kFlagTexts : 0);
    w.u16(trace.n_experts);
    w.u8(trace.top_k);
    w.u8(trace.groups_per_row);
    w.u8(width);
    w.u8(kWeightsBinary16);
    w.u16(0);
    w.u32(static_cast<std::uint32_t>(trace.layers.size()));
    w.u32(static_cast<std::uint32_t>(trace.n_tokens()));
    w.u32(trace.n_prompt_tokens);
    for (std::uint16_t layer : trace.layers) w.u16(layer);
    for (std::int32_t id : trace.token_ids) w.u32(static_cast<std::uint32_t>(id));
    if (texts) {
        for (const std::string& s : trace.token_texts) {
            w.varint(s.size());
            w.bytes(s.data(), s.size());
        }
    }
    for (std::uint16_t id : trace.expert_ids) {
        if (width == 1)
            w.u8(static_cast<std::uint8_t>(id));
        else
            w.u16(id);
    }
    for (float weight : trace.gate_weights) w.u16(float_to_half(weight));
    w.bytes(trace.group_ids.data(), trace.group_ids.size());
    w.u32(crc32(out));
    return out;
}

RoutingTrace decode_trace(std::span<const std::uint8_t> blob)
{
    if (blob.size() < kHeaderSize + 4)
        fail("size " + std::to_string(blob.size()) + " is smaller than the " + std::to_string(kHeaderSize + 4) +
             "-byte header and checksum (truncated)");
    if (std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0) fail("bad magic, expected 'MLTR'");

    // Version before checksum: a newer format may checksum differently, and saying
    // "newer version" is the more useful message.
    Reader header(blob.subspan(4));
    const std::uint16_t version = header.u16("version");
    if (version == 0 || version > kTraceFormatVersion)
        fail("format version " + std::to_string(version) + " is not supported (this build reads up to " +
             std::to_string(kTraceFormatVersion) + ")");

    const auto body = blob.first(blob.size() - 4);
    Reader tail(blob.subspan(blob.size() - 4));
    const std::uint32_t stored = tail.u32("checksum");
    const std::uint32_t computed = crc32(body);
    if (stored != computed)
        fail("checksum mismatch (stored " + std::to_string(stored) + ", computed " + std::to_string(computed) +
             "): the blob is truncated or was modified");

    Reader r(body.subspan(6));
    RoutingTrace t;
    const std::uint16_t flags = r.u16("flags");
    if (flags & ~kFlagTexts) fail("unknown flags " + std::to_string(flags));
    t.n_experts = r.u16("n_experts");
    t.top_k = r.u8("top_k");
    t.groups_per_row = r.u8("groups_per_row");
    const std::uint8_t width = r.u8("id width");
    const std::uint8_t encoding = r.u8("weight encoding");
    r.u16("reserved");
    const std::uint32_t n_layers = r.u32("n_layers");
    const std::uint32_t n_tokens = r.u32("n_tokens");
    t.n_prompt_tokens = r.u32("n_prompt_tokens");

    if (width != (t.n_experts <= 256 ? 1 : 2))
        fail("expert id width " + std::to_string(width) + " does not fit n_experts " + std::to_string(t.n_experts));
    if (encoding != kWeightsBinary16) fail("weight encoding " + std::to_string(encoding) + ", expected 1 (binary16)");
    if (n_layers == 0 || n_layers > kMaxLayers)
        fail("n_layers " + std::to_string(n_layers) + " outside 1.." + std::to_string(kMaxLayers));
    if (n_tokens > kMaxTokens) fail("n_tokens " + std::to_string(n_tokens) + " exceeds " + std::to_string(kMaxTokens));

    // Check the fixed-size sections against the bytes present before allocating.
    const std::uint64_t rows = std::uint64_t{n_tokens} * n_layers * t.top_k;
    const std::uint64_t group_rows = std::uint64_t{n_tokens} * n_layers * t.groups_per_row;
    const std::uint64_t fixed =
        std::uint64_t{n_layers} * 2 + std::uint64_t{n_tokens} * 4 + rows * (width + 2) + group_rows;
    if (fixed > r.left())
        fail("header promises " + std::to_string(fixed) + " bytes of data, only " + std::to_string(r.left()) +
             " present");

    t.layers.resize(n_layers);
    for (auto& layer : t.layers) layer = r.u16("layers");
    t.token_ids.resize(n_tokens);
    for (auto& id : t.token_ids) id = static_cast<std::int32_t>(r.u32("token ids"));
    if (flags & kFlagTexts) {
        t.token_texts.resize(n_tokens);
        for (auto& s : t.token_texts) {
            const std::uint64_t n = r.varint("token text length");
            if (n > r.left()) fail("token text of " + std::to_string(n) + " bytes runs past the end");
            s = r.text(static_cast<std::size_t>(n), "token text");
        }
    }
    t.expert_ids.resize(rows);
    for (auto& id : t.expert_ids) id = width == 1 ? r.u8("expert ids") : r.u16("expert ids");
    t.gate_weights.resize(rows);
    for (auto& weight : t.gate_weights) weight = half_to_float(r.u16("gate weights"));
    t.group_ids.resize(group_rows);
    for (auto& g : t.group_ids) g = r.u8("group ids");
    if (r.left() != 0) fail(std::to_string(r.left()) + " unexpected bytes after the group ids");
    t.validate();
    return t;
}

}  // namespace moelens::storage
