# One part of TensorFlow Lite Micro from the user's checkout as a static library (library mode
# of CMakeLists.txt): its core (interpreter, allocator, planner, the code shared with TFLite)
# or its kernels (reference, or cmsis_nn/ files replacing them). hil/backends/tflm computes the
# lists from the checkout by TFLM's own rules (hil/backends/tflm/checkout.py) and passes:
#   -DHIL_TFLM_SOURCES=<a.cc;...>  -DHIL_TFLM_INCLUDES=<dir;...>  -DHIL_TFLM_DEFINES=<X=1;...>
#   -DHIL_TFLM_FLAGS=<-Os | -O2>   (TFLM's Makefile levels: core for size, kernels for speed)
# C++17 with the bench's C++ flags (HIL_CXX_FLAGS: no exceptions, no RTTI, no thread-safe
# statics, no unwind tables) and the board's CPU flags.
foreach(var HIL_TFLM_SOURCES HIL_TFLM_INCLUDES)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is empty: hil/backends/tflm passes the TFLM source lists")
  endif()
endforeach()

enable_language(CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)

add_library(${HIL_LIBRARY_NAME} STATIC ${HIL_TFLM_SOURCES})
set_target_properties(${HIL_LIBRARY_NAME} PROPERTIES C_STANDARD 11)
target_include_directories(${HIL_LIBRARY_NAME} PRIVATE ${HIL_TFLM_INCLUDES})
target_compile_definitions(${HIL_LIBRARY_NAME} PRIVATE ${HIL_TFLM_DEFINES})
# Quoted: unquoted, the list's semicolons would split the generator expression apart.
target_compile_options(${HIL_LIBRARY_NAME} PRIVATE ${HIL_CPU_FLAGS} ${HIL_TFLM_FLAGS}
                       -ffunction-sections -fdata-sections
                       "$<$<COMPILE_LANGUAGE:CXX>:${HIL_CXX_FLAGS}>")
