# Toolchain file: bare-metal Arm (arm-none-eabi-gcc from Debian's gcc-arm-none-eabi).
# CPU flags are not set here: they come from the board (HIL_CPU_FLAGS), so one toolchain file
# serves every Cortex-M board.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

find_program(HIL_ARM_GCC arm-none-eabi-gcc)
if(NOT HIL_ARM_GCC)
  message(FATAL_ERROR "arm-none-eabi-gcc not found on PATH: install the Debian packages "
                      "gcc-arm-none-eabi libnewlib-arm-none-eabi (or run scripts/setup.sh)")
endif()
get_filename_component(_hil_bin "${HIL_ARM_GCC}" DIRECTORY)
set(CMAKE_C_COMPILER "${HIL_ARM_GCC}")
set(CMAKE_ASM_COMPILER "${HIL_ARM_GCC}")
# C++ only for backends that need it (TFLM); found lazily so C-only builds never need g++.
find_program(HIL_ARM_GXX arm-none-eabi-g++ HINTS "${_hil_bin}")
if(HIL_ARM_GXX)
  set(CMAKE_CXX_COMPILER "${HIL_ARM_GXX}")
endif()
set(CMAKE_AR "${_hil_bin}/arm-none-eabi-ar" CACHE FILEPATH "")
set(CMAKE_RANLIB "${_hil_bin}/arm-none-eabi-ranlib" CACHE FILEPATH "")

# No host-style executable can link without a board's startup code and linker script.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
