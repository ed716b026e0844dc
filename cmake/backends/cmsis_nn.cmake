# CMSIS-NN from the user's checkout as one static library (library mode of CMakeLists.txt).
#   -DCMSIS_NN_ROOT=<checkout> -DHIL_CMSIS_NN_FLAGS="-O2;..." (hil/backends/cmsis_nn)
# Sources: every Source/**/*.c except the float ones (*_f16.c, *_f32.c, arm_nntables_flt.c: they
# do not compile with the float gates at 0) and the host-only Python bindings. No CMSIS-Core
# headers are needed. The board's CPU flags select the code path: __ARM_FEATURE_DSP (Cortex-M4)
# picks the DSP kernels, a Cortex-M0 gets plain C.
if(NOT DEFINED CMSIS_NN_ROOT OR NOT EXISTS "${CMSIS_NN_ROOT}/Include/arm_nnfunctions.h")
  message(FATAL_ERROR "CMSIS_NN_ROOT (${CMSIS_NN_ROOT}) is not a CMSIS-NN checkout: "
                      "Include/arm_nnfunctions.h is missing")
endif()

file(GLOB_RECURSE cmsis_nn_sources "${CMSIS_NN_ROOT}/Source/*.c")
list(FILTER cmsis_nn_sources EXCLUDE REGEX "_f16\\.c$|_f32\\.c$|arm_nntables_flt\\.c$|/Bindings/")
if(NOT cmsis_nn_sources)
  message(FATAL_ERROR "no C sources under ${CMSIS_NN_ROOT}/Source: an incomplete checkout")
endif()

add_library(${HIL_LIBRARY_NAME} STATIC ${cmsis_nn_sources})
target_include_directories(${HIL_LIBRARY_NAME} PRIVATE "${CMSIS_NN_ROOT}/Include")
target_compile_options(${HIL_LIBRARY_NAME} PRIVATE ${HIL_CPU_FLAGS} ${HIL_CMSIS_NN_FLAGS} -g
                       -ffunction-sections -fdata-sections -fno-common)
target_compile_definitions(${HIL_LIBRARY_NAME} PRIVATE ARM_NN_ENABLE_F16=0 ARM_NN_ENABLE_F32=0)
