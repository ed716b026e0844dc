/*
 * Public interface of the project's own int8 kernel library: one header per operator family,
 * one kernel per .c file. The generated model includes only this file.
 */
#ifndef HIL_KERNELS_H
#define HIL_KERNELS_H

#include "hil_kernels_conv.h"
#include "hil_kernels_elementwise.h"
#include "hil_quant.h"

#endif /* HIL_KERNELS_H */
