#include "probity/warrant/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "probity/common/openssl_handles.h"
#include "probity/common/string_view.h"

namespace probity::warrant {
namespace {

using Bio = common::BioPtr;
using MdCtx = common::MdContextPtr;

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, common::PkeyDeleter());
}

// The first queued OpenSSL error as text, clearing the queue so it cannot leak into the next
// call made on this thread.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromRaw(std::string_view raw) {
  if (raw.size() != kRawBytes) {
    return absl::InvalidArgumentError(
        common::Cat("an Ed25519 public key has 32 bytes, not ", raw.size()));
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(raw), raw.size());
  if (key == nullptr) {
    return absl::InvalidArgumentError("not an Ed25519 public key: " + OpenSslError());
  }
  return Ed25519PublicKey(Own(key), std::string(raw));
}

bool Ed25519PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kSignatureBytes) return false;
  MdCtx ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(message),
                             message.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return absl::InternalError("Ed25519 key generation: " + OpenSslError());
  return Ed25519PrivateKey(Own(key));
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromPem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("BIO_new_mem_buf: " + OpenSslError());
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return absl::InvalidArgumentError("not a PEM private key: " + OpenSslError());
  }
  auto owned = Own(key);
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("the PEM private key is not an Ed25519 key");
  }
  return Ed25519PrivateKey(std::move(owned));
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromRawSeed(std::string_view seed) {
  if (seed.size() != 32) return absl::InvalidArgumentError("an Ed25519 seed has 32 bytes");
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, Bytes(seed), seed.size());
  if (key == nullptr) return absl::InvalidArgumentError("Ed25519 seed: " + OpenSslError());
  return Ed25519PrivateKey(Own(key));
}

absl::StatusOr<std::string> Ed25519PrivateKey::ToPem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError("PEM_write_bio_PrivateKey: " + OpenSslError());
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

absl::StatusOr<std::string> Ed25519PrivateKey::Sign(std::string_view message) const {
  MdCtx ctx(EVP_MD_CTX_new());
  std::string signature(Ed25519PublicKey::kSignatureBytes, '\0');
  size_t length = signature.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     Bytes(message), message.size()) != 1) {
    return absl::InternalError("Ed25519 signing: " + OpenSslError());
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<Ed25519PublicKey> Ed25519PrivateKey::PublicKey() const {
  unsigned char raw[Ed25519PublicKey::kRawBytes];
  size_t length = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key_.get(), raw, &length) != 1) {
    return absl::InternalError("EVP_PKEY_get_raw_public_key: " + OpenSslError());
  }
  return Ed25519PublicKey::FromRaw(std::string_view(reinterpret_cast<const char*>(raw), length));
}

}  // namespace probity::warrant
