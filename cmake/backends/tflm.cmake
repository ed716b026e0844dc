# TensorFlow Lite Micro from the user's checkout as one static library (library mode of
# CMakeLists.txt). hil/backends/tflm computes every list from the checkout by TFLM's own rules
# (hil/backends/tflm/checkout.py) and passes it here:
#   -DHIL_TFLM_CORE_SOURCES=<a.cc;...>    interpreter, allocator, planner, shared TFLite code
#   -DHIL_TFLM_KERNEL_SOURCES=<a.cc;...>  kernels (reference, or cmsis_nn/ files replacing them)
#   -DHIL_TFLM_INCLUDES=<dir;...>  -DHIL_TFLM_DEFINES=<X=1;...>
#   -DHIL_TFLM_CORE_FLAGS=<-Os>  -DHIL_TFLM_KERNEL_FLAGS=<-O2>   (TFLM's Makefile levels)
# C++17 with the bench's C++ flags (HIL_CXX_FLAGS: no exceptions, no RTTI, no thread-safe
# statics, no unwind tables) and the board's CPU flags.
foreach(var HIL_TFLM_CORE_SOURCES HIL_TFLM_KERNEL_SOURCES HIL_TFLM_INCLUDES)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is empty: hil/backends/tflm passes the TFLM source lists")
  endif()
endforeach()

enable_language(CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)

add_library(${HIL_LIBRARY_NAME} STATIC ${HIL_TFLM_CORE_SOURCES} ${HIL_TFLM_KERNEL_SOURCES})
set_source_files_properties(${HIL_TFLM_CORE_SOURCES} PROPERTIES
                            COMPILE_OPTIONS "${HIL_TFLM_CORE_FLAGS}")
set_source_files_properties(${HIL_TFLM_KERNEL_SOURCES} PROPERTIES
                            COMPILE_OPTIONS "${HIL_TFLM_KERNEL_FLAGS}")
set_target_properties(${HIL_LIBRARY_NAME} PROPERTIES C_STANDARD 11)
target_include_directories(${HIL_LIBRARY_NAME} PRIVATE ${HIL_TFLM_INCLUDES})
target_compile_definitions(${HIL_LIBRARY_NAME} PRIVATE ${HIL_TFLM_DEFINES})
target_compile_options(${HIL_LIBRARY_NAME} PRIVATE ${HIL_CPU_FLAGS} -ffunction-sections
                       -fdata-sections $<$<COMPILE_LANGUAGE:CXX>:${HIL_CXX_FLAGS}>)
