#pragma once
// The one exception type of moelens_storage. `kind` lets the caller choose a safe
// path (open read-only, tell the user the disk is full, ...); `what()` is a message
// fit for the user that names the file and what was expected vs found.
#include <stdexcept>
#include <string>

namespace moelens::storage {

enum class ErrorKind {
    Sql,           // a statement failed for another reason (a bug or an unexpected state)
    Corrupt,       // the file is not a database or its pages are damaged
    NewerVersion,  // written by a newer MoE Lens: must not be written by this one
    Locked,        // another running instance owns the database (or a lock timed out)
    ReadOnly,      // the file or its directory cannot be written
    DiskFull,      // no space left (or the page limit was reached)
    Io,            // the operating system reported an I/O error
    Constraint,    // a foreign key, unique or check constraint was violated
    NotFound,      // a chat, message, run or preset id that does not exist
    InvalidInput,  // bad caller data: malformed import JSON, settings of the wrong type
    TraceFormat,   // a routing-trace blob that is truncated, tampered with or unknown
};

const char* to_string(ErrorKind kind);

class StorageError : public std::runtime_error {
public:
    StorageError(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const { return m_kind; }

private:
    ErrorKind m_kind;
};

}  // namespace moelens::storage
