#pragma once
// Whole-file reads and writes for the commands, with errors naming the file.
#include <string>

namespace moelens::cli {

// Throws moelens::Error "PATH: cannot open the WHAT" or "PATH: read error".
std::string read_file(const std::string& path, const std::string& what);
// Writes beside `path` and renames over it, so a failed write leaves any earlier
// file as it was. Throws moelens::Error naming the path.
void write_file_replacing(const std::string& path, const std::string& text);

}  // namespace moelens::cli
