# Decides whether the CUDA backend plugin (engine/cuda, libmoelens_cuda.so) is built.
# MOELENS_CUDA=AUTO builds it when nvcc is found; ON requires it; OFF skips it.
# The app and the engine never link CUDA: the plugin is dlopen()ed at run time.
set(MOELENS_HAVE_CUDA OFF)
if(NOT MOELENS_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # CMake 3.25 does not know nvcc's C++20 flag yet.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    # Ampere, Ada and Hopper by default; a GPU check builds for its own card only
    # (-DCMAKE_CUDA_ARCHITECTURES=90), which compiles in a third of the time.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES 80 89 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(MOELENS_HAVE_CUDA ON)
    message(STATUS "MoE Lens: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(MOELENS_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MOELENS_CUDA=ON but no CUDA compiler was found (looked for nvcc on PATH and /usr/local/cuda/bin/nvcc)")
  else()
    message(STATUS "MoE Lens: CUDA backend OFF (nvcc not found); the engine runs on the CPU")
  endif()
else()
  message(STATUS "MoE Lens: CUDA backend OFF (MOELENS_CUDA=OFF)")
endif()
