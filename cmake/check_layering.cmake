# The engine's folders are layers (docs/architecture.md, "Inside the engine"):
# a folder may include its own headers, the public API (moelens/...) and the
# folders listed for it here, never one above it. Run at configure time by
# engine/CMakeLists.txt and as the `engine_layering` test:
#   cmake -DENGINE_DIR=<repo>/engine -P cmake/check_layering.cmake
set(moelens_layer_util util)
set(moelens_layer_backend backend)
set(moelens_layer_cpu cpu backend)
set(moelens_layer_model model cpu backend util)
set(moelens_layer_device device model backend util)
set(moelens_layer_tokenizer tokenizer util)
set(moelens_layer_runtime runtime device model cpu backend tokenizer util)
set(moelens_layer_cuda cuda backend)  # the plugin: the ABI header only (checked below)

function(moelens_check_layering engine_dir)
  set(violations "")
  foreach(folder util backend cpu model device tokenizer runtime cuda)
    file(GLOB_RECURSE files "${engine_dir}/${folder}/*.h" "${engine_dir}/${folder}/*.cpp" "${engine_dir}/${folder}/*.inc"
         "${engine_dir}/${folder}/*.cu" "${engine_dir}/${folder}/*.cuh")
    foreach(f IN LISTS files)
      file(STRINGS "${f}" lines REGEX "^#include \"[a-z_]+/")
      foreach(line IN LISTS lines)
        string(REGEX MATCH "^#include \"([a-z_]+)/([^\"]*)\"" _ "${line}")
        set(to "${CMAKE_MATCH_1}")
        if(to STREQUAL "moelens")
          continue()
        endif()
        list(FIND moelens_layer_${folder} "${to}" at)
        if(at EQUAL -1 OR (folder STREQUAL "cuda" AND to STREQUAL "backend" AND NOT CMAKE_MATCH_2 STREQUAL "cuda_plugin_abi.h"))
          file(RELATIVE_PATH rel "${engine_dir}" "${f}")
          string(APPEND violations "\n  ${rel}: ${line} (${folder}/ may include: ${moelens_layer_${folder}})")
        endif()
      endforeach()
    endforeach()
  endforeach()
  if(violations)
    message(FATAL_ERROR "engine layering violated (see docs/architecture.md):${violations}")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND ENGINE_DIR)
  moelens_check_layering("${ENGINE_DIR}")
  message(STATUS "engine layering: ok")
endif()
