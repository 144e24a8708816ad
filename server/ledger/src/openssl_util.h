#pragma once

// Kept only for checkpoint.cpp, which another change reworks at the same time; new code uses
// probity/common/openssl_handles.h. Delete this header once checkpoint.cpp includes that.

#include "probity/common/openssl_handles.h"

namespace probity::ledger::internal {

using common::BioPtr;
using common::MdContextPtr;
using common::PkeyContextPtr;
using common::PkeyPtr;

}  // namespace probity::ledger::internal
