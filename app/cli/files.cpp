#include "files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "moelens/error.h"

namespace moelens::cli {

std::string read_file(const std::string& path, const std::string& what)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the " + what);
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) throw Error(path + ": read error");
    return s.str();
}

void write_file_replacing(const std::string& path, const std::string& text)
{
    namespace fs = std::filesystem;
    const fs::path tmp = path + ".part";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(text.data(), std::streamsize(text.size()));
        out.flush();
        if (!out) {
            std::error_code ignored;
            fs::remove(tmp, ignored);
            throw Error(path + ": cannot write");
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw Error(path + ": " + ec.message());
}

}  // namespace moelens::cli
