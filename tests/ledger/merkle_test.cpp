// RFC 6962 test vectors (the eight test leaves used by Certificate Transparency and Go's
// sumdb/tlog) and property tests on random trees.
#include "probity/ledger/merkle.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace probity::ledger {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::vector<Hash> TestLeafHashes() {
  const char* leaves[] = {"",
                          "00",
                          "10",
                          "2021",
                          "3031",
                          "40414243",
                          "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"};
  std::vector<Hash> hashes;
  for (const char* leaf : leaves) hashes.push_back(HashLeaf(FromHex(leaf)));
  return hashes;
}

TEST(MerkleVectors, EmptyTreeRootIsSha256OfNothing) {
  EXPECT_EQ(ToHex(EmptyTreeRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(*RootAt(0, SubtreeHashesFromLeaves({}))), ToHex(EmptyTreeRoot()));
}

TEST(MerkleVectors, RootsOfTheEightTestLeaves) {
  const char* roots[] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  const auto leaves = TestLeafHashes();
  MerkleFrontier frontier;
  for (uint64_t size = 1; size <= 8; ++size) {
    frontier.Append(leaves[size - 1]);
    auto root = RootAt(size, SubtreeHashesFromLeaves(leaves));
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(ToHex(*root), roots[size - 1]) << "size " << size;
    EXPECT_EQ(ToHex(frontier.Root()), roots[size - 1]) << "frontier size " << size;
  }
}

struct InclusionVector {
  uint64_t index, size;
  std::vector<const char*> path;
};

TEST(MerkleVectors, InclusionProofs) {
  const std::vector<InclusionVector> vectors = {
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
      {0, 1, {}},
  };
  const auto leaves = TestLeafHashes();
  const auto source = SubtreeHashesFromLeaves(leaves);
  for (const auto& vector : vectors) {
    auto proof = InclusionProof(vector.index, vector.size, source);
    ASSERT_TRUE(proof.ok());
    ASSERT_EQ(proof->size(), vector.path.size()) << vector.index << "/" << vector.size;
    for (size_t i = 0; i < proof->size(); ++i) EXPECT_EQ(ToHex((*proof)[i]), vector.path[i]);
    const Hash root = *RootAt(vector.size, source);
    EXPECT_TRUE(
        VerifyInclusion(vector.index, vector.size, leaves[vector.index], *proof, root).ok());
  }
}

struct ConsistencyVector {
  uint64_t old_size, new_size;
  std::vector<const char*> proof;
};

TEST(MerkleVectors, ConsistencyProofs) {
  const std::vector<ConsistencyVector> vectors = {
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
      {4, 7, {"837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}},
      {8, 8, {}},
  };
  const auto leaves = TestLeafHashes();
  const auto source = SubtreeHashesFromLeaves(leaves);
  for (const auto& vector : vectors) {
    auto proof = ConsistencyProof(vector.old_size, vector.new_size, source);
    ASSERT_TRUE(proof.ok());
    ASSERT_EQ(proof->size(), vector.proof.size()) << vector.old_size << "->" << vector.new_size;
    for (size_t i = 0; i < proof->size(); ++i) EXPECT_EQ(ToHex((*proof)[i]), vector.proof[i]);
    EXPECT_TRUE(VerifyConsistency(vector.old_size, vector.new_size,
                                  *RootAt(vector.old_size, source),
                                  *RootAt(vector.new_size, source), *proof)
                    .ok());
  }
}

std::vector<Hash> RandomLeaves(std::mt19937_64& random, size_t count) {
  std::vector<Hash> leaves;
  for (size_t i = 0; i < count; ++i) leaves.push_back(HashLeaf(std::to_string(random())));
  return leaves;
}

TEST(MerkleProperties, EveryInclusionProofVerifiesAndAnyChangeFails) {
  std::mt19937_64 random(6962);
  for (int round = 0; round < 40; ++round) {
    const uint64_t size = 1 + random() % 70;
    const auto leaves = RandomLeaves(random, size);
    const auto source = SubtreeHashesFromLeaves(leaves);
    const Hash root = *RootAt(size, source);
    for (uint64_t index = 0; index < size; ++index) {
      auto proof = InclusionProof(index, size, source);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(VerifyInclusion(index, size, leaves[index], *proof, root).ok())
          << index << "/" << size;
      // Every single flipped bit in the proof is caught.
      for (size_t element = 0; element < proof->size(); ++element) {
        auto changed = *proof;
        changed[element][random() % 32] ^= uint8_t(1u << (random() % 8));
        EXPECT_FALSE(VerifyInclusion(index, size, leaves[index], changed, root).ok());
      }
      if (size > 1) {
        const uint64_t other = (index + 1 + random() % (size - 1)) % size;
        EXPECT_FALSE(VerifyInclusion(other, size, leaves[index], *proof, root).ok())
            << "index " << index << " proof accepted for index " << other << " of " << size;
        EXPECT_FALSE(VerifyInclusion(index, size, leaves[other], *proof, root).ok());
      }
      if (!proof->empty()) {
        auto shorter = *proof;
        shorter.pop_back();
        EXPECT_FALSE(VerifyInclusion(index, size, leaves[index], shorter, root).ok());
      }
      auto longer = *proof;
      longer.push_back(leaves[0]);
      EXPECT_FALSE(VerifyInclusion(index, size, leaves[index], longer, root).ok());
    }
  }
}

TEST(MerkleProperties, EveryConsistencyProofVerifiesAndAnyChangeFails) {
  std::mt19937_64 random(9162);
  for (int round = 0; round < 20; ++round) {
    const uint64_t new_size = 1 + random() % 70;
    const auto leaves = RandomLeaves(random, new_size);
    const auto source = SubtreeHashesFromLeaves(leaves);
    const Hash new_root = *RootAt(new_size, source);
    for (uint64_t old_size = 1; old_size <= new_size; ++old_size) {
      const Hash old_root = *RootAt(old_size, source);
      auto proof = ConsistencyProof(old_size, new_size, source);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(VerifyConsistency(old_size, new_size, old_root, new_root, *proof).ok())
          << old_size << "->" << new_size;
      for (size_t element = 0; element < proof->size(); ++element) {
        auto changed = *proof;
        changed[element][random() % 32] ^= uint8_t(1u << (random() % 8));
        EXPECT_FALSE(VerifyConsistency(old_size, new_size, old_root, new_root, changed).ok());
      }
      if (old_size < new_size) {
        Hash wrong_old = old_root;
        wrong_old[0] ^= 1;
        EXPECT_FALSE(VerifyConsistency(old_size, new_size, wrong_old, new_root, *proof).ok());
        Hash wrong_new = new_root;
        wrong_new[31] ^= 0x80;
        EXPECT_FALSE(VerifyConsistency(old_size, new_size, old_root, wrong_new, *proof).ok());
        // A proof for one old size does not pass for another.
        if (old_size > 1) {
          EXPECT_FALSE(VerifyConsistency(old_size - 1, new_size, *RootAt(old_size - 1, source),
                                         new_root, *proof)
                           .ok());
        }
        EXPECT_FALSE(
            VerifyConsistency(old_size, new_size, old_root, new_root, std::vector<Hash>{}).ok());
      }
    }
  }
}

TEST(MerkleProperties, RangeHashFromStoredSubtreesMatchesRecursiveDefinition) {
  std::mt19937_64 random(1);
  const auto leaves = RandomLeaves(random, 37);
  MerkleFrontier frontier;
  std::vector<MerkleFrontier::CompletedNode> nodes;
  for (const auto& leaf : leaves) {
    auto completed = frontier.Append(leaf);
    nodes.insert(nodes.end(), completed.begin(), completed.end());
    // The frontier reports exactly the complete subtrees, with their true hashes.
    for (const auto& node : completed) {
      EXPECT_EQ(node.hash, *SubtreeHashesFromLeaves(leaves)(node.level, node.index));
    }
  }
  EXPECT_EQ(nodes.size(), 37u + 18 + 9 + 4 + 2 + 1);
  EXPECT_EQ(frontier.Root(), *RootAt(37, SubtreeHashesFromLeaves(leaves)));
}

TEST(MerkleProperties, BadArgumentsAreErrors) {
  const auto leaves = TestLeafHashes();
  const auto source = SubtreeHashesFromLeaves(leaves);
  EXPECT_FALSE(InclusionProof(8, 8, source).ok());
  EXPECT_FALSE(ConsistencyProof(9, 8, source).ok());
  EXPECT_FALSE(RootAt(9, source).ok());
  EXPECT_FALSE(VerifyInclusion(3, 3, leaves[0], {}, leaves[0]).ok());
  EXPECT_FALSE(HashFromHex("zz").ok());
}

}  // namespace
}  // namespace probity::ledger
