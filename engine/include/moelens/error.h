#pragma once
// Errors the engine reports to its callers. Every message names the thing that is
// wrong (file, tensor, key, value, line/column) and what was expected, so the UI
// can show it as is and the log has the full context.
#include <stdexcept>
#include <string>

namespace moelens {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A model folder, config.json or safetensors file that cannot be used.
class ModelError : public Error {
public:
    using Error::Error;
};

// tokenizer.json / tokenizer_config.json / chat template problems.
class TokenizerError : public Error {
public:
    using Error::Error;
};

// A compute backend failure (CUDA error, out of memory, plugin ABI mismatch).
class BackendError : public Error {
public:
    using Error::Error;
};

// A device that failed mid-run: lost, or out of memory. The generations of the
// step it failed in end with this message; what ran on it must be set up again.
class DeviceFault : public BackendError {
public:
    DeviceFault(int device, const std::string& message) : BackendError(message), m_device(device) {}
    int device() const { return m_device; }

private:
    int m_device;
};

// Generation was cancelled from another thread.
class Cancelled : public Error {
public:
    Cancelled() : Error("cancelled") {}
};

}  // namespace moelens
