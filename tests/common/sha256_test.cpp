#include "probity/common/sha256.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/scoped_temp_dir.h"
#include "probity/common/hex.h"

namespace probity::common {
namespace {

// FIPS 180-4 / NIST CSRC example values.
constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr char kTwoBlocksDigest[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr char kMillionA[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

TEST(Sha256Test, KnownAnswers) {
  EXPECT_EQ(Sha256Hex(""), kEmpty);
  EXPECT_EQ(Sha256Hex("abc"), kAbc);
  EXPECT_EQ(Sha256Hex(kTwoBlocks), kTwoBlocksDigest);
  EXPECT_EQ(LowercaseHex(Sha256("abc")), kAbc);
}

TEST(Sha256Test, BytesAreTheRawDigest) {
  const std::string raw = Sha256Bytes("abc");
  ASSERT_EQ(raw.size(), kSha256Bytes);
  EXPECT_EQ(LowercaseHex(raw), kAbc);
}

TEST(Sha256HasherTest, PartsGiveTheDigestOfTheirConcatenation) {
  Sha256Hasher hasher;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) hasher.Update(chunk);
  absl::StatusOr<Sha256Digest> digest = hasher.Finish();
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(LowercaseHex(*digest), kMillionA);

  Sha256Hasher split;
  split.Update(std::string_view("ab"));
  split.Update(std::string_view());
  split.Update("c", 1);
  EXPECT_EQ(LowercaseHex(*split.Finish()), kAbc);
}

TEST(Sha256HasherTest, ASecondFinishIsAnError) {
  Sha256Hasher hasher;
  ASSERT_TRUE(hasher.Finish().ok());
  EXPECT_FALSE(hasher.Finish().ok());
}

TEST(Sha256HexOfFileTest, HashesTheFileAndNamesAMissingOne) {
  test_support::ScopedTempDir dir("common-sha256");
  std::ofstream(dir.path() / "abc", std::ios::binary) << "abc";
  absl::StatusOr<std::string> hex = Sha256HexOfFile(dir.path() / "abc");
  ASSERT_TRUE(hex.ok()) << hex.status();
  EXPECT_EQ(*hex, kAbc);
  absl::StatusOr<std::string> missing = Sha256HexOfFile(dir.path() / "missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find((dir.path() / "missing").string()),
            absl::string_view::npos);
}

}  // namespace
}  // namespace probity::common
