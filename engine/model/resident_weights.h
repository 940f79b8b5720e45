#pragma once
// Stored-dtype copies of the matrices decode streams (LoadOptions::memory), in
// one large-page buffer (cpu/large_pages.h), so that reading them walks a page
// table entry per 2 MiB instead of per 4 KiB of the file mapping.
#include <cstdint>
#include <memory>

#include "cpu/large_pages.h"
#include "model/weights.h"
#include "moelens/model.h"

namespace moelens {

class ResidentWeights {
public:
    // Copies every matrix of `w` not already in large pages (the int8 ones are)
    // out of the checkpoint's files and points its view at the copy; returns null and leaves `w` mapped when
    // `options.memory` says so, or when automatic and the copies would not fit in
    // the memory available. Throws BackendError when resident is asked for and
    // the copies exceed the memory available, or cannot be allocated.
    static std::unique_ptr<ResidentWeights> apply(ModelWeights& w, const Checkpoint& ckpt, const LoadOptions& options);

    std::uint64_t bytes() const { return m_buffer.size(); }

private:
    cpu::LargePageBuffer m_buffer;
};

}  // namespace moelens
