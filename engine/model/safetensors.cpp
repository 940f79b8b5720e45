// safetensors: memory-mapped reader with strict header validation, and a writer.
#include "moelens/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "moelens/error.h"
#include "util/mapping_guard.h"

namespace moelens {

// Read-only mapping of a whole file, with the file kept open for read_mapped;
// unmapped and closed on destruction.
class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path)
    {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw ModelError(path.string() + ": cannot open: " + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            int e = errno;
            ::close(fd);
            throw ModelError(path.string() + ": cannot stat: " + std::strerror(e));
        }
        m_size = static_cast<std::uint64_t>(st.st_size);
        if (m_size > 0) {
            void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                int e = errno;
                ::close(fd);
                throw ModelError(path.string() + ": cannot map: " + std::strerror(e));
            }
            m_data = static_cast<const std::byte*>(p);
            m_guard = guard_mapping(p, m_size);
        }
        m_fd = fd;
    }
    ~MappedFile()
    {
        unguard_mapping(m_guard);
        if (m_data) ::munmap(const_cast<std::byte*>(m_data), m_size);
        ::close(m_fd);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const { return m_data; }
    std::uint64_t size() const { return m_size; }
    int fd() const { return m_fd; }
    std::uint32_t truncated_reads() const { return mapping_faults(m_guard); }

private:
    int m_fd = -1;
    int m_guard = -1;  // util/mapping_guard.h
    const std::byte* m_data = nullptr;
    std::uint64_t m_size = 0;
};

const char* dtype_name(DType t)
{
    switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    }
    return "?";
}

std::size_t dtype_size(DType t)
{
    switch (t) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::U8: return 1;
    }
    return 0;
}

namespace {

bool parse_dtype(const std::string& s, DType& out)
{
    static const std::pair<const char*, DType> table[] = {
        {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
        {"I32", DType::I32}, {"I64", DType::I64}, {"U8", DType::U8},
    };
    for (auto& [name, t] : table)
        if (s == name) {
            out = t;
            return true;
        }
    return false;
}

// The header is JSON from an untrusted file: a cap keeps a lying length from
// making us parse gigabytes (the format's own reference uses 100 MB).
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

std::uint64_t TensorInfo::numel() const
{
    std::uint64_t n = 1;
    for (auto d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : m_path(path)
{
    const std::string where = path.string();
    m_map = std::make_unique<MappedFile>(path);
    const std::uint64_t size = m_map->size();
    if (size < 8) throw ModelError(where + ": truncated safetensors file: " + std::to_string(size) + " bytes, need at least 8 for the header length");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<std::uint64_t>(m_map->data()[i]);
    if (header_len > kMaxHeaderBytes)
        throw ModelError(where + ": header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
    if (header_len > size - 8)
        throw ModelError(where + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
                         std::to_string(size) + " bytes)");
    m_data_start = 8 + header_len;
    const std::uint64_t data_size = size - m_data_start;

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(reinterpret_cast<const char*>(m_map->data()) + 8,
                                       reinterpret_cast<const char*>(m_map->data()) + m_data_start);
    } catch (const nlohmann::json::exception& e) {
        throw ModelError(where + ": header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) throw ModelError(where + ": header is not a JSON object");

    std::vector<const TensorInfo*> by_offset;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) throw ModelError(where + ": __metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m)
                if (m.value().is_string()) m_metadata[m.key()] = m.value().get<std::string>();
            continue;
        }
        const std::string tw = where + ": tensor '" + name + "'";
        if (!v.is_object()) throw ModelError(tw + ": entry is not an object");
        TensorInfo t;
        t.name = name;
        auto dt = v.find("dtype");
        if (dt == v.end() || !dt->is_string()) throw ModelError(tw + ": missing dtype");
        if (!parse_dtype(dt->get<std::string>(), t.dtype))
            throw ModelError(tw + ": unsupported dtype " + dt->get<std::string>());
        auto sh = v.find("shape");
        if (sh == v.end() || !sh->is_array()) throw ModelError(tw + ": missing shape");
        std::uint64_t numel = 1;
        for (const auto& d : *sh) {
            if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
                throw ModelError(tw + ": shape entry " + d.dump() + " is not a non-negative integer");
            const auto dim = d.get<std::int64_t>();
            if (dim > 0 && numel > (std::uint64_t(1) << 62) / static_cast<std::uint64_t>(dim))
                throw ModelError(tw + ": shape " + sh->dump() + " is too large");
            numel *= static_cast<std::uint64_t>(dim);
            t.shape.push_back(dim);
        }
        auto off = v.find("data_offsets");
        if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
            !(*off)[1].is_number_unsigned())
            throw ModelError(tw + ": data_offsets must be two non-negative integers");
        const auto begin = (*off)[0].get<std::uint64_t>();
        const auto end = (*off)[1].get<std::uint64_t>();
        if (begin > end)
            throw ModelError(tw + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] are reversed");
        if (end > data_size)
            throw ModelError(tw + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                             "] run past the end of the data (" + std::to_string(data_size) + " bytes)");
        const std::uint64_t expected = numel * dtype_size(t.dtype);
        if (end - begin != expected)
            throw ModelError(tw + ": " + dtype_name(t.dtype) + " " + sh->dump() + " needs " + std::to_string(expected) +
                             " bytes but data_offsets span " + std::to_string(end - begin));
        t.offset = begin;
        t.nbytes = end - begin;
        m_tensors.emplace(name, std::move(t));
    }
    for (const auto& [name, t] : m_tensors) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
    });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
        const TensorInfo* a = by_offset[i - 1];
        const TensorInfo* b = by_offset[i];
        if (b->nbytes > 0 && a->offset + a->nbytes > b->offset)
            throw ModelError(where + ": tensors '" + a->name + "' and '" + b->name + "' overlap (bytes " +
                             std::to_string(a->offset) + ".." + std::to_string(a->offset + a->nbytes) + " and " +
                             std::to_string(b->offset) + ".." + std::to_string(b->offset + b->nbytes) + ")");
    }
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

std::uint64_t SafetensorsFile::file_size() const { return m_map->size(); }
std::uint32_t SafetensorsFile::truncated_reads() const { return m_map->truncated_reads(); }

const TensorInfo* SafetensorsFile::find(const std::string& name) const
{
    auto it = m_tensors.find(name);
    return it == m_tensors.end() ? nullptr : &it->second;
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const
{
    if (const TensorInfo* t = find(name)) return *t;
    throw ModelError(m_path.string() + ": missing tensor '" + name + "'");
}

const std::byte* SafetensorsFile::data(const TensorInfo& t) const { return m_map->data() + m_data_start + t.offset; }

bool SafetensorsFile::holds(const std::byte* p, std::size_t n) const
{
    const std::byte* b = m_map->data();
    return b && p >= b && static_cast<std::uint64_t>(p - b) <= m_map->size() &&
           n <= m_map->size() - static_cast<std::uint64_t>(p - b);
}

void SafetensorsFile::read_mapped(const std::byte* p, std::size_t n, std::byte* dst) const
{
    auto offset = static_cast<off_t>(p - m_map->data());
    while (n > 0) {
        const ssize_t got = ::pread(m_map->fd(), dst, n, offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            throw ModelError(m_path.string() + ": reading " + std::to_string(n) + " bytes at offset " +
                             std::to_string(offset) + " failed: " + (got < 0 ? std::strerror(errno) : "file shrank"));
        dst += got;
        offset += got;
        n -= static_cast<std::size_t>(got);
    }
}

std::vector<float> SafetensorsFile::to_f32(const std::string& name) const
{
    const TensorInfo& t = at(name);
    const std::byte* p = data(t);
    std::vector<float> out(t.numel());
    for (std::size_t i = 0; i < out.size(); ++i) {
        switch (t.dtype) {
        case DType::F32: std::memcpy(&out[i], p + 4 * i, 4); break;
        case DType::F64: {
            double d;
            std::memcpy(&d, p + 8 * i, 8);
            out[i] = static_cast<float>(d);
            break;
        }
        case DType::BF16:
        case DType::F16: {
            std::uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out[i] = t.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
            break;
        }
        default:
            throw ModelError(m_path.string() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                             ", expected a float type");
        }
    }
    return out;
}

std::vector<std::int64_t> SafetensorsFile::to_i64(const std::string& name) const
{
    const TensorInfo& t = at(name);
    const std::byte* p = data(t);
    std::vector<std::int64_t> out(t.numel());
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (t.dtype == DType::I32) {
            std::int32_t v;
            std::memcpy(&v, p + 4 * i, 4);
            out[i] = v;
        } else if (t.dtype == DType::I64) {
            std::memcpy(&out[i], p + 8 * i, 8);
        } else {
            throw ModelError(m_path.string() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                             ", expected I32 or I64");
        }
    }
    return out;
}

TensorToWrite make_f32_tensor(std::string name, std::vector<std::int64_t> shape, std::span<const float> values)
{
    TensorToWrite t{std::move(name), DType::F32, std::move(shape), {}};
    t.bytes.resize(values.size_bytes());
    std::memcpy(t.bytes.data(), values.data(), values.size_bytes());
    return t;
}

TensorToWrite make_i32_tensor(std::string name, std::vector<std::int64_t> shape, std::span<const int> values)
{
    TensorToWrite t{std::move(name), DType::I32, std::move(shape), {}};
    t.bytes.resize(values.size() * 4);
    for (std::size_t i = 0; i < values.size(); ++i) {
        const std::int32_t v = values[i];
        std::memcpy(t.bytes.data() + 4 * i, &v, 4);
    }
    return t;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata)
{
    // nlohmann::ordered_json keeps the tensors in the order given.
    nlohmann::ordered_json header;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
        std::uint64_t numel = 1;
        for (auto d : t.shape) numel *= static_cast<std::uint64_t>(d);
        if (numel * dtype_size(t.dtype) != t.bytes.size())
            throw ModelError(path.string() + ": tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                             " bytes, its shape and dtype need " + std::to_string(numel * dtype_size(t.dtype)));
        header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
        offset += t.bytes.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw ModelError(path.string() + ": cannot create file");
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((text.size() >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
    out.flush();
    if (!out) throw ModelError(path.string() + ": write failed");
}

float bf16_to_f32(std::uint16_t v)
{
    const std::uint32_t bits = std::uint32_t(v) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

std::uint16_t f32_to_bf16(float f)
{
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (std::isnan(f)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
    bits += 0x7fff + ((bits >> 16) & 1);
    return static_cast<std::uint16_t>(bits >> 16);
}

float f16_to_f32(std::uint16_t h)
{
    const std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
    std::uint32_t exp = (h >> 10) & 0x1f;
    std::uint32_t mant = h & 0x3ff;
    std::uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400) == 0);
            bits = sign | (std::uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

}  // namespace moelens
