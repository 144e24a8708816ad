#pragma once

// RAII owners for the OpenSSL objects the ledger uses.

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>

namespace probity::ledger::internal {

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyContextDeleter {
  void operator()(EVP_PKEY_CTX* context) const { EVP_PKEY_CTX_free(context); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdContextPtr = std::unique_ptr<EVP_MD_CTX, MdContextDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using PkeyContextPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter>;

}  // namespace probity::ledger::internal
