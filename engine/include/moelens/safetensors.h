#pragma once
// Reading and writing safetensors files: 8-byte little-endian header length N,
// N bytes of JSON ({name: {dtype, shape, data_offsets}, "__metadata__": {...}}),
// then the raw little-endian data. Files are memory-mapped; every header is
// validated strictly (sizes, offsets inside the file, no overlap, dtype x shape =
// byte length) and errors name the file and tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace moelens {

enum class DType { F32, F16, BF16, F64, I32, I64, U8 };

const char* dtype_name(DType t);
std::size_t dtype_size(DType t);

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::uint64_t offset = 0;  // from the start of the data section
    std::uint64_t nbytes = 0;
    std::uint64_t numel() const;
};

class MappedFile;

// A mapped, validated safetensors file. Tensor data stays in the mapping.
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::filesystem::path& path);  // throws ModelError
    ~SafetensorsFile();
    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

    const std::filesystem::path& path() const { return m_path; }
    std::uint64_t file_size() const;
    // Reads of the mapping past the file's end after it was cut short on disk
    // while mapped (they saw zeros instead of ending the process: engine/util/mapping_guard.h).
    std::uint32_t truncated_reads() const;
    const std::map<std::string, TensorInfo>& tensors() const { return m_tensors; }
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }
    const TensorInfo* find(const std::string& name) const;
    const TensorInfo& at(const std::string& name) const;  // throws ModelError naming file and tensor
    const std::byte* data(const TensorInfo& t) const;
    // Whether [p, p + n) lies inside this file's mapping.
    bool holds(const std::byte* p, std::size_t n) const;
    // Copies [p, p + n) of the mapping into dst by reading the file instead of the
    // mapping: touching a mapping faults it in 4 KiB at a time, an order of
    // magnitude slower than the kernel's copy out of the page cache. Throws
    // ModelError naming the file when the read fails.
    void read_mapped(const std::byte* p, std::size_t n, std::byte* dst) const;

    // Widens a float tensor (F32/F16/BF16/F64) or an integer one (I32/I64) to a vector.
    std::vector<float> to_f32(const std::string& name) const;
    std::vector<std::int64_t> to_i64(const std::string& name) const;

private:
    std::filesystem::path m_path;
    std::unique_ptr<MappedFile> m_map;
    std::uint64_t m_data_start = 0;
    std::map<std::string, TensorInfo> m_tensors;
    std::map<std::string, std::string> m_metadata;
};

// A tensor to write: raw little-endian bytes of dtype x shape.
struct TensorToWrite {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> bytes;
};

TensorToWrite make_f32_tensor(std::string name, std::vector<std::int64_t> shape, std::span<const float> values);
TensorToWrite make_i32_tensor(std::string name, std::vector<std::int64_t> shape, std::span<const int> values);

// Writes tensors in the given order (data aligned to 8 bytes). Throws ModelError on I/O errors.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// BF16 = upper half of an IEEE float32; F16 = IEEE binary16.
float bf16_to_f32(std::uint16_t v);
std::uint16_t f32_to_bf16(float f);  // round to nearest even
float f16_to_f32(std::uint16_t v);

}  // namespace moelens
