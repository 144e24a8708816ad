# Every third-party dependency comes from Debian 12's packages (deploy/install-deps.sh).
find_package(OpenMP REQUIRED)
if(PROBITY_GPU)
  # The GPU FAISS is a static library whose exported target links CUDA::cudart and CUDA::cublas.
  find_package(CUDAToolkit REQUIRED)
  find_package(faiss REQUIRED CONFIG PATHS "${PROBITY_FAISS_GPU_PREFIX}" NO_DEFAULT_PATH)
  if(NOT EXISTS "${PROBITY_FAISS_GPU_PREFIX}/include/faiss/gpu/GpuIndexIVFPQ.h")
    message(FATAL_ERROR "PROBITY_GPU: no FAISS GPU module under ${PROBITY_FAISS_GPU_PREFIX}; "
                        "run deploy/build-faiss-gpu.sh first")
  endif()
  # The kernels exist only for the architectures FAISS was compiled for.
  set(_probity_stamp "${PROBITY_FAISS_GPU_PREFIX}/probity-faiss-gpu.txt")
  if(EXISTS "${_probity_stamp}")
    file(STRINGS "${_probity_stamp}" _probity_built REGEX "^cuda_architectures=")
    string(REPLACE "cuda_architectures=" "" _probity_built "${_probity_built}")
    if(NOT _probity_built STREQUAL PROBITY_CUDA_ARCHITECTURES)
      message(FATAL_ERROR "PROBITY_CUDA_ARCHITECTURES=${PROBITY_CUDA_ARCHITECTURES} but FAISS under "
                          "${PROBITY_FAISS_GPU_PREFIX} was built for ${_probity_built}; rebuild "
                          "it with deploy/build-faiss-gpu.sh --cuda-architectures")
    endif()
  endif()
  message(STATUS "probity: GPU path on, FAISS from ${PROBITY_FAISS_GPU_PREFIX} "
                 "(CUDA architectures ${PROBITY_CUDA_ARCHITECTURES})")
else()
  find_package(faiss REQUIRED)
endif()
if(PROBITY_GPU_COMPILE_CHECK)
  find_package(CUDAToolkit REQUIRED)
  if(NOT EXISTS "${PROBITY_FAISS_GPU_PREFIX}/include/faiss/gpu/GpuIndexIVFPQ.h")
    message(FATAL_ERROR "PROBITY_GPU_COMPILE_CHECK: no FAISS GPU headers under "
                        "${PROBITY_FAISS_GPU_PREFIX}; run deploy/build-faiss-gpu.sh --headers-only")
  endif()
endif()
find_package(OpenSSL 3 REQUIRED)
# libsodium signs the ledger's checkpoints (server/ledger/src/note.cpp says why not OpenSSL).
find_package(PkgConfig REQUIRED)
pkg_check_modules(sodium REQUIRED IMPORTED_TARGET libsodium)
find_package(absl REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
# The metrics endpoint (server/service): prometheus-cpp's core for the metrics and their text,
# civetweb (which prometheus-cpp's pull exposer runs on; found through prometheus-cpp's config)
# for HTTP.
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(Boost REQUIRED)
find_package(Threads REQUIRED)
find_package(GTest REQUIRED)
if(PROBITY_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

find_program(PROBITY_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
find_program(PROBITY_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)

# Tests and benchmarks call helper programs through /usr/bin/python3 so that they use
# Debian's python3-numpy, python3-faiss, python3-jwt and python3-cryptography.
function(probity_add_gtest name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/common/test_main.cpp)
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} probity_test_support GTest::gtest GTest::gmock)
  target_compile_definitions(${name} PRIVATE
    PROBITY_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}" PROBITY_TEST_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  include(GoogleTest)
  gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} DISCOVERY_TIMEOUT 60)
endfunction()

# A libFuzzer target (PROBITY_FUZZ builds, clang only). The code under test goes into SOURCES
# rather than LIBS, so that libFuzzer's coverage and the sanitizers instrument it: the project's
# libraries are built without them. Undefined behaviour stops the run like a crash does.
function(probity_add_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;INCLUDES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${ARG_INCLUDES})
  set(flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
  target_compile_options(${name} PRIVATE ${flags})
  target_link_options(${name} PRIVATE ${flags})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
endfunction()
