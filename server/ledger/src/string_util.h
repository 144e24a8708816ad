#pragma once

// Kept only for checkpoint.cpp, which another change reworks at the same time; every other file
// uses probity/common/string_view.h. Delete this header once checkpoint.cpp includes that.

#include "probity/common/string_view.h"

namespace probity::ledger::internal {

using common::AsAbsl;
using common::Split;

}  // namespace probity::ledger::internal
