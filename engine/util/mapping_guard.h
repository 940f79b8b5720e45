#pragma once
// Reads of a memory-mapped weight file that was cut short while mapped.
//
// A file that is truncated in place after it was mapped (a download tool
// rewriting it, `> file`, a full disk during a copy over it) makes every read of
// a page past its new end raise SIGBUS, which would end the process. Sizes are
// checked when a file is opened; for what happens afterwards a guard is kept on
// every weight mapping: a SIGBUS inside one maps a zero page over the faulting
// page (the read goes on, seeing zeros), counts the fault for that mapping and
// returns. The engine checks the counts after every step (and at the end of
// loading) and throws ModelError naming the file, so the step's results are
// discarded and that generation ends with the message; the app keeps running.
// A SIGBUS anywhere else goes to the handler that was there before (or kills the
// process as it would have). Replacing a file by renaming a new one over it is
// harmless: the mapping keeps the old file.
#include <cstddef>
#include <cstdint>

namespace moelens {

// Registers [base, base + size) (page-aligned base, as mmap returns it); returns
// a slot for the calls below, or -1 when every slot is taken (that mapping is
// then unguarded, as before). Installs the handler on first use.
int guard_mapping(const void* base, std::size_t size);
// Before munmap: the range is no longer ours.
void unguard_mapping(int slot);
// Reads of this mapping that were answered with zeros so far.
std::uint32_t mapping_faults(int slot);

}  // namespace moelens
